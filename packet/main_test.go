package packet

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind. The codec
// starts none, so a leak here means a test (or a test dependency) did.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
