package conform

import (
	"fmt"
	"io"
	"strings"
)

// Status is the outcome of one check.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
	// NotApplicable: the check tests the other transport (HTTP or CoAP).
	NotApplicable Status = "n/a"
)

// Result is the outcome of one check, for humans and for --json.
type Result struct {
	ID       string `json:"id"`
	Group    string `json:"group"`
	Title    string `json:"title"`
	Section  string `json:"section"`
	Required bool   `json:"required"`
	Status   Status `json:"status"`
	Detail   string `json:"detail,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Target    string   `json:"target"`
	Numbering string   `json:"numbering"`
	Results   []Result `json:"results"`
	Passed    int      `json:"passed"`
	Failed    int      `json:"failed"`
	Skipped   int      `json:"skipped"`
	// NotApplicable counts the checks of the other transport.
	NotApplicable int `json:"not_applicable"`
	// RequiredFailed counts failed required checks; OK is RequiredFailed == 0.
	RequiredFailed int `json:"required_failed"`
}

// OK reports whether every required check passed or was skipped for a
// stated reason.
func (r *Report) OK() bool { return r.RequiredFailed == 0 }

func (r *Report) add(res Result) {
	r.Results = append(r.Results, res)
	switch res.Status {
	case Pass:
		r.Passed++
	case Fail:
		r.Failed++
		if res.Required {
			r.RequiredFailed++
		}
	case Skip:
		r.Skipped++
	case NotApplicable:
		r.NotApplicable++
	}
}

// Result returns the result of check id, or nil.
func (r *Report) Result(id string) *Result {
	for i := range r.Results {
		if r.Results[i].ID == id {
			return &r.Results[i]
		}
	}
	return nil
}

// WriteText writes the report for a terminal: one line per check, then a
// summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "TEEP conformance of %s (%s numbering)\n", r.Target, r.Numbering)
	group := ""
	for _, res := range r.Results {
		if res.Group != group {
			group = res.Group
			fmt.Fprintf(&b, "\n%s\n", group)
		}
		level := "SHOULD"
		if res.Required {
			level = "MUST"
		}
		fmt.Fprintf(&b, "  %-4s %-6s %-34s %s  [%s]\n", res.Status, level, res.ID, res.Title, res.Section)
		if res.Detail != "" {
			fmt.Fprintf(&b, "                   %s\n", res.Detail)
		}
	}
	verdict := "PASS: every required check passed"
	if !r.OK() {
		verdict = fmt.Sprintf("FAIL: %d required check(s) failed", r.RequiredFailed)
	}
	fmt.Fprintf(&b, "\n%d passed, %d failed, %d skipped, %d not applicable. %s\n", r.Passed, r.Failed, r.Skipped, r.NotApplicable, verdict)
	_, err := io.WriteString(w, b.String())
	return err
}
