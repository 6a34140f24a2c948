package packet

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// The word-at-a-time ASCII fast path of checkUTF8 must agree with the plain
// definition for every position a bad byte can take within and across words.
func TestCheckUTF8MatchesDefinition(t *testing.T) {
	reference := func(s string) string {
		if !utf8.ValidString(s) {
			return "ill-formed UTF-8"
		}
		if strings.IndexByte(s, 0) >= 0 {
			return "contains U+0000"
		}
		return ""
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "/", "\x00", "\x7f", "\x80", "\xff", "é", "€", "😀", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80"}
	for i := 0; i < 200_000; i++ {
		var b strings.Builder
		n := rng.IntN(40)
		for j := 0; j < n; j++ {
			if rng.IntN(4) == 0 {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			} else {
				b.WriteByte(byte('a' + rng.IntN(26)))
			}
		}
		s := b.String()
		if got, want := checkUTF8(s), reference(s); got != want {
			t.Fatalf("checkUTF8(%q) = %q, want %q", s, got, want)
		}
	}
}
