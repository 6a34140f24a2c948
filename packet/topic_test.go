package packet

import (
	"errors"
	"strings"
	"testing"
)

// topicMatchCases is the matching table of MQTT section 4.7. Rows marked
// "spec" are the examples the specification gives (3.1.1 sections 4.7.1.2,
// 4.7.1.3 and 4.7.2; 5.0 sections 4.7.1.2, 4.7.1.3 and 4.7.2).
var topicMatchCases = []struct {
	filter, topic string
	want          bool
}{
	// "#": the parent level and everything below (spec).
	{"sport/tennis/player1/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/tennis/player1/#", "sport/tennis/player2", false},
	{"sport/tennis/player1/#", "sport/tennis", false},
	{"sport/#", "sport", true},
	{"sport/#", "sports", false},
	{"#", "sport/tennis/player1", true},
	{"#", "/", true},
	{"#", "a", true},
	{"a/#", "a", true},
	{"a/#", "a/", true},
	{"a/#", "a/b/c", true},
	{"a/#", "ab", false},
	{"a/b/#", "a", false},

	// "+": exactly one level, possibly empty (spec).
	{"sport/tennis/+", "sport/tennis/player1", true},
	{"sport/tennis/+", "sport/tennis/player2", true},
	{"sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true},
	{"+", "sport", true},
	{"+", "sport/", false},
	{"+", "/finance", false},
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+/tennis/#", "sport/tennis", true},
	{"+/tennis/#", "sport/tennis/player1", true},
	{"+/tennis/#", "sport/golf", false},
	{"sport/+/player1", "sport/tennis/player1", true},
	{"+/#", "a", true},
	{"+/+/+", "a/b", false},

	// Empty levels are levels like any other.
	{"a//b", "a//b", true},
	{"a/+/b", "a//b", true},
	{"a/+/b", "a/b", false},
	{"a/b", "a//b", false},
	{"/", "/", true},
	{"+/+", "/", true},
	{"a/", "a/", true},
	{"a/", "a", false},
	{"a/", "a/b", false},
	{"a/+", "a/", true},
	{"a/+", "a", false},
	{"a", "a/", false},

	// Exact levels: case and spaces matter.
	{"ACCOUNTS", "Accounts", false},
	{"Accounts payable", "Accounts payable", true},
	{"a/b", "a/b/", false},
	{"a/b/c", "a/b", false},

	// Topics starting with "$" are not seen by filters starting with a
	// wildcard [MQTT-4.7.2-1] (spec).
	{"#", "$SYS/monitor/Clients", false},
	{"#", "$SYS", false},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"+", "$SYS", false},
	{"+/#", "$SYS/x", false},
	{"$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS/#", "$SYS/x", true},
	{"$SYS/#", "$SYS", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$SYS/+", "$SYS/x/y", false},
	{"a/#", "a/$SYS", true}, // only the first level is special
	{"+/$x", "a/$x", true},
	{"$x", "$x", true},

	// Shared subscriptions match as their topic filter does.
	{"$share/g/a/+", "a/b", true},
	{"$share/g/a/+", "a/b/c", false},
	{"$share/g/#", "a/b", true},
	{"$share/g/#", "$SYS/x", false},
	{"$share/group/sport/#", "sport", true},
	{"$share/g/$SYS/#", "$SYS/x", true},

	// Invalid filters and topics match nothing.
	{"", "", false},
	{"a", "", false},
	{"", "a", false},
	{"a/#/b", "a/x/b", false},
	{"a#", "a#", false},
	{"a+", "a+", false},
	{"#", "a/+", false},
	{"+", "#", false},
	{"a/+", "a/+", false},
	{"$share//a", "a", false},
	{"$share/g", "g", false},
	{"$share/g+/a", "a", false},
	{"#", "a\x00b", false},
	{"#", "a\xff", false},
	{"a\xff", "a\xff", false},
}

func TestMatchTopic(t *testing.T) {
	if len(topicMatchCases) < 40 {
		t.Fatalf("only %d rows", len(topicMatchCases))
	}
	for _, tc := range topicMatchCases {
		if got := MatchTopic(tc.filter, tc.topic); got != tc.want {
			t.Errorf("MatchTopic(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

// TestMatchTopicShared checks that wrapping any valid filter in a share
// does not change what it matches.
func TestMatchTopicShared(t *testing.T) {
	for _, tc := range topicMatchCases {
		if TopicFilterError(tc.filter) != nil || strings.HasPrefix(tc.filter, "$share/") {
			continue
		}
		shared := "$share/grp/" + tc.filter
		if got := MatchTopic(shared, tc.topic); got != tc.want {
			t.Errorf("MatchTopic(%q, %q) = %v, want %v as for %q", shared, tc.topic, got, tc.want, tc.filter)
		}
	}
}

// TestMatchTopicSelf checks that every valid topic name matches itself as a
// filter and is matched by "#" unless it starts with "$".
func TestMatchTopicSelf(t *testing.T) {
	for _, tc := range topicMatchCases {
		name := tc.topic
		if TopicNameError(name) != nil {
			continue
		}
		if !MatchTopic(name, name) {
			t.Errorf("MatchTopic(%q, %q) = false", name, name)
		}
		if want := name[0] != '$'; MatchTopic("#", name) != want {
			t.Errorf("MatchTopic(%q, %q) = %v", "#", name, !want)
		}
	}
}

// topicErrCheck asserts that err is nil for kind nil, or an *Error of that
// kind naming field with no packet.
func topicErrCheck(t *testing.T, call string, err, kind error, field string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Errorf("%s = %v, want nil", call, err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Errorf("%s = %v, want %v", call, err, kind)
		return
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Errorf("%s = %T, want *Error", call, err)
		return
	}
	if pe.Packet != 0 || pe.Field != field || pe.Detail == "" {
		t.Errorf("%s: Packet %v Field %q Detail %q", call, pe.Packet, pe.Field, pe.Detail)
	}
	if !strings.Contains(err.Error(), field) {
		t.Errorf("%s: message %q does not name %q", call, err, field)
	}
}

func TestTopicNameError(t *testing.T) {
	cases := []struct {
		name string
		kind error // nil: valid
	}{
		{"a", nil},
		{"a/b/c", nil},
		{"/", nil},
		{"//", nil},
		{"a/", nil},
		{"/a", nil},
		{"$SYS/broker/load", nil},
		{"$share/g/a", nil}, // a name, not a filter: nothing special
		{"sport tennis", nil},
		{"caf\u00e9/\u2603/\U0001F600", nil},
		{"\ufeff", nil}, // U+FEFF is allowed and kept [MQTT-1.5.4-3]
		{strings.Repeat("a", 65535), nil},
		{"", ErrProtocolViolation},
		{"+", ErrProtocolViolation},
		{"#", ErrProtocolViolation},
		{"a/+", ErrProtocolViolation},
		{"a/#", ErrProtocolViolation},
		{"a+b", ErrProtocolViolation},
		{"sport/tennis#", ErrProtocolViolation},
		{"a\x00b", ErrMalformed},
		{"a\xff", ErrMalformed},
		{"\xc0\xaf", ErrMalformed},         // overlong "/"
		{"\xed\xa0\x80", ErrMalformed},     // U+D800
		{"\xed\xbf\xbf", ErrMalformed},     // U+DFFF
		{"\xf4\x90\x80\x80", ErrMalformed}, // above U+10FFFF
		{"a\xe2\x98", ErrMalformed},        // truncated sequence
		{strings.Repeat("a", 65536), ErrMalformed},
	}
	for _, tc := range cases {
		topicErrCheck(t, "TopicNameError("+topicShort(tc.name)+")", TopicNameError(tc.name), tc.kind, "topic name")
	}
}

func TestTopicFilterError(t *testing.T) {
	cases := []struct {
		filter string
		kind   error
	}{
		{"a", nil},
		{"#", nil},
		{"+", nil},
		{"/", nil},
		{"+/+", nil},
		{"/+", nil},
		{"+/", nil},
		{"a/#", nil},
		{"a/+/b", nil},
		{"a/+/#", nil},
		{"+/#", nil},
		{"a//b", nil},
		{"$SYS/#", nil},
		{"$share/g/a", nil},
		{"$share/g/#", nil},
		{"$share/g/+/b", nil},
		{"$share/g//", nil},
		{"$share/consumer1/sport/tennis/+", nil},
		{"$SHARE/g/a", nil}, // case matters: an ordinary filter
		{"$sharex/a", nil},
		{strings.Repeat("a", 65535), nil},
		{"", ErrProtocolViolation},
		{"a/#/b", ErrProtocolViolation},
		{"a#", ErrProtocolViolation},
		{"a/b#", ErrProtocolViolation},
		{"#/", ErrProtocolViolation},
		{"#/a", ErrProtocolViolation},
		{"##", ErrProtocolViolation},
		{"a+/b", ErrProtocolViolation},
		{"+a", ErrProtocolViolation},
		{"a/+b", ErrProtocolViolation},
		{"++", ErrProtocolViolation},
		{"+#", ErrProtocolViolation},
		{"#+", ErrProtocolViolation},
		{"$share/", ErrProtocolViolation},
		{"$share/g", ErrProtocolViolation},
		{"$share/g/", ErrProtocolViolation},
		{"$share//a", ErrProtocolViolation},
		{"$share//", ErrProtocolViolation},
		{"$share/+/a", ErrProtocolViolation},
		{"$share/g#/a", ErrProtocolViolation},
		{"$share/g/a#", ErrProtocolViolation},
		{"$share/g/a/#/b", ErrProtocolViolation},
		{"a\x00", ErrMalformed},
		{"a/\xff", ErrMalformed},
		{"\xed\xa0\x80/#", ErrMalformed},
		{"$share/\xff/a", ErrMalformed},
		{strings.Repeat("a", 65536), ErrMalformed},
	}
	for _, tc := range cases {
		topicErrCheck(t, "TopicFilterError("+topicShort(tc.filter)+")", TopicFilterError(tc.filter), tc.kind, "topic filter")
	}
}

// TestTopicNameIsFilter checks the relation between the two validators: a
// valid topic name is a valid filter that matches only itself among names.
func TestTopicNameIsFilter(t *testing.T) {
	for _, tc := range topicMatchCases {
		if TopicNameError(tc.topic) == nil && TopicFilterError(tc.topic) != nil {
			t.Errorf("%q is a valid topic name but not a valid filter: %v", tc.topic, TopicFilterError(tc.topic))
		}
	}
}

func TestParseShared(t *testing.T) {
	cases := []struct {
		filter       string
		group, topic string
		ok           bool
	}{
		{"$share/g/a", "g", "a", true},
		{"$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+", true},
		{"$share/g/#", "g", "#", true},
		{"$share/g//", "g", "/", true},
		{"$share/g/$SYS/#", "g", "$SYS/#", true},
		{"$share/g/$share/h/a", "g", "$share/h/a", true},
		{"a/b", "", "", false},
		{"#", "", "", false},
		{"", "", "", false},
		{"$SYS/a", "", "", false},
		{"$SHARE/g/a", "", "", false},
		{"$sharex/g/a", "", "", false},
		{"share/g/a", "", "", false},
		{"$share", "", "", false},
		{"$share/", "", "", false},
		{"$share/g", "", "", false},
		{"$share/g/", "", "", false},
		{"$share//a", "", "", false},
		{"$share/+/a", "", "", false},
		{"$share/#/a", "", "", false},
	}
	for _, tc := range cases {
		g, f, ok := ParseShared(tc.filter)
		if g != tc.group || f != tc.topic || ok != tc.ok {
			t.Errorf("ParseShared(%q) = %q, %q, %v; want %q, %q, %v", tc.filter, g, f, ok, tc.group, tc.topic, tc.ok)
		}
		// Whatever ParseShared accepts, TopicFilterError accepts when the
		// inner filter is valid.
		if ok && TopicFilterError(f) == nil && TopicFilterError(tc.filter) != nil {
			t.Errorf("ParseShared accepts %q but TopicFilterError refuses it: %v", tc.filter, TopicFilterError(tc.filter))
		}
	}
}

// topicShort quotes s for a test message, eliding long runs.
func topicShort(s string) string {
	if len(s) > 40 {
		return "\"" + s[:10] + "...\" (" + itoa(len(s)) + " bytes)"
	}
	return "\"" + strings.ToValidUTF8(s, "\\x??") + "\""
}
