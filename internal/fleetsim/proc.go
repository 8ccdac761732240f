package fleetsim

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// procSample is what /proc tells about a process (Linux).
type procSample struct {
	cpu     time.Duration // user and system
	rss     int64         // VmRSS, bytes
	peakRSS int64         // VmHWM, bytes
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports (it is fixed in the kernel's ABI, unlike
// CONFIG_HZ).
const clockTicks = 100

// readProc samples process pid from /proc; pid 0 is no process (a zero
// sample, no error).
func readProc(pid int) (procSample, error) {
	if pid == 0 {
		return procSample{}, nil
	}
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.cpu, err = parseStatCPU(stat); err != nil {
		return s, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.rss, s.peakRSS = statusKiB(status, "VmRSS:"), statusKiB(status, "VmHWM:")
	return s, nil
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/PID/stat line; the command name (field 2) is in parentheses and may
// hold spaces, so fields are counted after its closing one.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state): utime is field 14, f[11].
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name", len(f))
	}
	var ticks int64
	for _, x := range f[11:13] {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad CPU time %q", x)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// statusKiB reads a "Key:   N kB" line of /proc/PID/status, in bytes; 0
// when absent.
func statusKiB(status []byte, key string) int64 {
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil && n >= 0 {
					return n << 10
				}
			}
		}
	}
	return 0
}

// currentRSS is this process's resident set size now (Linux), 0 when
// unknown.
func currentRSS() int64 {
	s, err := readProc(os.Getpid())
	if err != nil {
		return 0
	}
	return s.rss
}
