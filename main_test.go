package mqttas

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind: the client's promise is that
// Close stops everything it started.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
