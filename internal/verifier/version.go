package verifier

import (
	"fmt"
	"strconv"
	"strings"
)

// compareVersions orders dotted numeric versions ("1.2.10" > "1.2.9"),
// treating missing components as 0 and a "-suffix" as a pre-release that
// sorts before the release (SemVer 2.0.0 §11; "+build" is ignored). It covers
// the CoSWID multipartnumeric, multipartnumeric+suffix, decimal and semver
// schemes; anything else is an error so a policy never silently compares
// versions it cannot order.
func compareVersions(a, b string) (int, error) {
	pa, err := parseVersion(a)
	if err != nil {
		return 0, err
	}
	pb, err := parseVersion(b)
	if err != nil {
		return 0, err
	}
	for i := 0; i < max(len(pa.nums), len(pb.nums)); i++ {
		var x, y uint64
		if i < len(pa.nums) {
			x = pa.nums[i]
		}
		if i < len(pb.nums) {
			y = pb.nums[i]
		}
		if x != y {
			if x < y {
				return -1, nil
			}
			return 1, nil
		}
	}
	switch {
	case pa.pre == pb.pre:
		return 0, nil
	case pa.pre == "":
		return 1, nil
	case pb.pre == "":
		return -1, nil
	}
	return comparePre(pa.pre, pb.pre), nil
}

type version struct {
	nums []uint64
	pre  string
}

func parseVersion(s string) (version, error) {
	core, _, _ := strings.Cut(s, "+")
	core, pre, hasPre := strings.Cut(core, "-")
	if hasPre && pre == "" {
		return version{}, fmt.Errorf("version %q: empty pre-release suffix", s)
	}
	if core == "" {
		return version{}, fmt.Errorf("version %q: not a dotted numeric version", s)
	}
	parts := strings.Split(core, ".")
	if len(parts) > 16 {
		return version{}, fmt.Errorf("version %q: more than 16 components", s)
	}
	v := version{pre: pre}
	for _, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return version{}, fmt.Errorf("version %q: component %q is not a number", s, p)
		}
		v.nums = append(v.nums, n)
	}
	return v, nil
}

// comparePre orders pre-release identifiers as SemVer does: numeric ones
// numerically and below alphanumeric ones, a shorter list first on a tie.
func comparePre(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < min(len(as), len(bs)); i++ {
		x, xerr := strconv.ParseUint(as[i], 10, 64)
		y, yerr := strconv.ParseUint(bs[i], 10, 64)
		switch {
		case xerr == nil && yerr == nil:
			if x != y {
				if x < y {
					return -1
				}
				return 1
			}
		case xerr == nil:
			return -1
		case yerr == nil:
			return 1
		default:
			if c := strings.Compare(as[i], bs[i]); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(as) < len(bs):
		return -1
	case len(as) > len(bs):
		return 1
	}
	return 0
}
