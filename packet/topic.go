package packet

import "strings"

// MatchTopic reports whether topic name topic matches subscription filter
// filter under the rules of MQTT section 4.7: "+" matches exactly one level,
// a trailing "#" matches the parent level and everything below it, and a
// filter starting with a wildcard never matches a topic starting with "$"
// ([MQTT-4.7.2-1]), so "#" does not see "$SYS/...". A shared subscription
// filter ("$share/group/f") matches as f does. Invalid filters and topics
// match nothing.
func MatchTopic(filter, topic string) bool {
	if _, f, ok := ParseShared(filter); ok {
		filter = f
	}
	if topicNameError(topic) != "" || TopicFilterError(filter) != nil {
		return false
	}
	if topic[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			// One side has run out of levels: a match only if both did, or
			// if all the filter has left is "#", which also matches the
			// parent level ("a/#" matches "a").
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// ParseShared splits a shared subscription filter "$share/group/filter"
// into its share name and topic filter. ok is false when filter is not a
// shared subscription; a "$share/" filter without a valid share name or
// topic filter is reported by TopicFilterError, not here.
func ParseShared(filter string) (group, topicFilter string, ok bool) {
	rest, found := strings.CutPrefix(filter, "$share/")
	if !found {
		return "", "", false
	}
	group, topicFilter, found = strings.Cut(rest, "/")
	if !found || group == "" || topicFilter == "" || hasWildcard(group) {
		return "", "", false
	}
	return group, topicFilter, true
}

// TopicNameError returns nil if name may be used as the topic of a PUBLISH
// (non-empty, well-formed UTF-8 without U+0000, no wildcards), or an error
// wrapping ErrProtocolViolation or ErrMalformed that says why not.
func TopicNameError(name string) error {
	if why := stringError(name); why != "" {
		return newError(ErrMalformed, 0, "topic name", why)
	}
	if why := topicNameError(name); why != "" {
		return newError(ErrProtocolViolation, 0, "topic name", why)
	}
	return nil
}

func topicNameError(name string) string {
	if name == "" {
		return "empty"
	}
	if hasWildcard(name) {
		return "contains a wildcard (+ or #)"
	}
	return checkUTF8(name)
}

// TopicFilterError returns nil if filter is a valid subscription filter:
// non-empty, well-formed UTF-8, "+" only as a whole level, "#" only as the
// whole last level, and for "$share/group/f" a share name without wildcards
// or "/" and a valid f. The shared-subscription rule is MQTT 5.0's; the
// SUBSCRIBE and UNSUBSCRIBE codecs do not apply it to 3.1.1 packets. Otherwise the error wraps ErrProtocolViolation or
// ErrMalformed and says why.
func TopicFilterError(filter string) error {
	if why := stringError(filter); why != "" {
		return newError(ErrMalformed, 0, "topic filter", why)
	}
	if why := topicFilterError(filter, true); why != "" {
		return newError(ErrProtocolViolation, 0, "topic filter", why)
	}
	return nil
}

// topicFilterError applies the wildcard rules; shared says whether a
// "$share/" prefix introduces a shared subscription, as it does in MQTT
// 5.0. In 3.1.1 such a filter is an ordinary one.
func topicFilterError(filter string, shared bool) string {
	if filter == "" {
		return "empty"
	}
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok && shared {
		group, f, found := strings.Cut(rest, "/")
		switch {
		case !found || f == "":
			return "shared subscription has no topic filter after the share name"
		case group == "":
			return "shared subscription has an empty share name"
		case hasWildcard(group):
			return "share name contains a wildcard"
		}
		filter = f
	}
	for i := 0; i < len(filter); i++ {
		switch filter[i] {
		case '+':
			if (i > 0 && filter[i-1] != '/') || (i+1 < len(filter) && filter[i+1] != '/') {
				return "'+' must occupy a whole level"
			}
		case '#':
			if i+1 != len(filter) {
				return "'#' must be the last character"
			}
			if i > 0 && filter[i-1] != '/' {
				return "'#' must occupy a whole level"
			}
		}
	}
	return ""
}
