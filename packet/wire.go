package packet

import (
	"strings"
	"unicode/utf8"
	"unsafe"
)

// MaxRemainingLength is the largest body the four-byte variable byte
// integer of the fixed header can describe.
const MaxRemainingLength = 268_435_455

// MaxVarint is the largest value of any variable byte integer.
const MaxVarint = MaxRemainingLength

func varintLen(n int) int {
	switch {
	case n < 1<<7:
		return 1
	case n < 1<<14:
		return 2
	case n < 1<<21:
		return 3
	}
	return 4
}

func appendVarint(dst []byte, n int) []byte {
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// parseVarint decodes a variable byte integer from the start of b. It
// returns the value and the bytes used; used is 0 when b ends first and -1
// when the encoding is invalid (a fifth byte, or with strict set a longer
// encoding than the value needs).
func parseVarint(b []byte, strict bool) (value, used int) {
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0
		}
		c := b[i]
		value |= int(c&0x7f) << (7 * i)
		if c < 0x80 {
			if strict && i > 0 && c == 0 {
				return 0, -1 // a trailing zero group: not the minimum encoding
			}
			return value, i + 1
		}
	}
	return 0, -1
}

// decoder walks a packet body. The first failure sticks: later reads return
// zero values, so a decode function can read every field and check d.err
// once at the end of a group.
type decoder struct {
	b   []byte
	off int
	t   Type
	err error
}

func (d *decoder) fail(kind error, field, detail string) {
	if d.err == nil {
		d.err = newError(kind, d.t, field, detail)
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) short(field string) {
	d.fail(ErrMalformed, field, "packet ends inside this field")
}

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.short(field)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uint16(field string) uint16 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 2 {
		d.short(field)
		return 0
	}
	v := uint16(d.b[d.off])<<8 | uint16(d.b[d.off+1])
	d.off += 2
	return v
}

func (d *decoder) uint32(field string) uint32 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 4 {
		d.short(field)
		return 0
	}
	b := d.b[d.off:]
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	d.off += 4
	return v
}

// varint reads a variable byte integer inside a body, where only MQTT 5.0
// uses them and the minimum-length rule always applies.
func (d *decoder) varint(field string) int {
	if d.err != nil {
		return 0
	}
	v, n := parseVarint(d.b[d.off:], true)
	if n == 0 {
		d.short(field)
		return 0
	}
	if n < 0 {
		d.fail(ErrMalformed, field, "invalid variable byte integer")
		return 0
	}
	d.off += n
	return v
}

// binary reads two-byte-length-prefixed data. The result aliases the body.
func (d *decoder) binary(field string) []byte {
	n := int(d.uint16(field))
	if d.err != nil {
		return nil
	}
	if d.remaining() < n {
		d.short(field)
		return nil
	}
	b := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

// string reads a UTF-8 string; the result aliases the body without copying.
func (d *decoder) string(field string) string {
	b := d.binary(field)
	if d.err != nil || len(b) == 0 {
		return ""
	}
	s := unsafe.String(&b[0], len(b))
	if err := checkUTF8(s); err != "" {
		d.fail(ErrMalformed, field, err)
		return ""
	}
	return s
}

// rest returns every byte not yet read, aliasing the body.
func (d *decoder) rest() []byte {
	if d.err != nil || d.off == len(d.b) {
		return nil
	}
	b := d.b[d.off:]
	d.off = len(d.b)
	return b
}

// end reports trailing bytes after the last field as malformed.
func (d *decoder) end() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail(ErrMalformed, "packet", itoa(len(d.b)-d.off)+" unexpected bytes after the last field")
	}
	return d.err
}

// checkUTF8 returns why s is not a well-formed MQTT UTF-8 string, or "".
// Go's decoder already refuses surrogate halves and overlong forms; MQTT
// forbids U+0000 as well. Topics and identifiers are nearly always short
// ASCII, so the common case is settled eight bytes at a time and the two
// general checks run only from the first word that needs them.
func checkUTF8(s string) string {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte with its top bit set, or (with none set) a zero byte.
		if (x|(x-lsb)&^x)&msb != 0 {
			break
		}
	}
	for j := i; j < len(s); j++ {
		if c := s[j]; c == 0 || c >= utf8.RuneSelf {
			if !utf8.ValidString(s[i:]) {
				return "ill-formed UTF-8"
			}
			if strings.IndexByte(s[i:], 0) >= 0 {
				return "contains U+0000"
			}
			return ""
		}
	}
	return ""
}

// hasWildcard reports whether s contains '+' or '#'. Two IndexByte calls
// beat strings.ContainsAny, which builds a set on every call.
func hasWildcard(s string) bool {
	return strings.IndexByte(s, '+') >= 0 || strings.IndexByte(s, '#') >= 0
}

// stringError returns why s cannot be sent as an MQTT UTF-8 string, or "".
func stringError(s string) string {
	if len(s) > 65535 {
		return "longer than 65,535 bytes"
	}
	return checkUTF8(s)
}

// checkString validates a string the encoder is about to write.
func checkString(t Type, field, s string) error {
	if why := stringError(s); why != "" {
		return newError(ErrMalformed, t, field, why)
	}
	return nil
}

func checkBinary(t Type, field string, b []byte) error {
	if len(b) > 65535 {
		return newError(ErrMalformed, t, field, "longer than 65,535 bytes")
	}
	return nil
}

func appendUint16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendString(dst []byte, s string) []byte {
	dst = appendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendBinary(dst []byte, b []byte) []byte {
	dst = appendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// appendHeader writes the fixed header after checking the body fits the
// protocol's limit.
func appendHeader(dst []byte, t Type, flags byte, remaining int) ([]byte, error) {
	if remaining > MaxRemainingLength {
		return dst, newError(ErrPacketTooLarge, t, "remaining length", itoa(remaining)+" bytes exceeds 268,435,455")
	}
	dst = append(dst, byte(t)<<4|flags)
	return appendVarint(dst, remaining), nil
}

// checkFlags enforces the fixed flag nibble of every type but PUBLISH.
func checkFlags(t Type, flags byte) error {
	if flags != fixedFlags[t] {
		return newError(ErrMalformed, t, "fixed header flags", "reserved flag bits must be "+flagString(fixedFlags[t])+", got "+flagString(flags))
	}
	return nil
}

func flagString(f byte) string {
	const digits = "01"
	return string([]byte{digits[f>>3&1], digits[f>>2&1], digits[f>>1&1], digits[f&1]})
}

func checkVersion(t Type, v Version) error {
	if !v.valid() {
		return newError(ErrUnsupportedVersion, t, "protocol version", "level "+itoa(int(v))+" is not 3, 4 or 5")
	}
	return nil
}

// checkID refuses packet identifier 0, which the protocol reserves for "no
// identifier" in every packet that needs one.
func checkID(t Type, id uint16) error {
	if id == 0 {
		return newError(ErrProtocolViolation, t, "packet identifier", "must not be 0")
	}
	return nil
}
