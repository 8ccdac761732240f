//go:build !unix

package fleetsim

import "time"

// cpuTime and peakRSS are unknown here: reported as 0.
func cpuTime() time.Duration { return 0 }
func peakRSS() int64         { return 0 }
