package console

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/teep-go/teep/internal/tam/admin"
)

// Rollout states of one device for one component.
const (
	stateInstalled = "installed" // the latest version is on the device
	statePending   = "pending"   // an Update carrying the component awaits its Success or Error
	stateFailed    = "failed"    // installing the latest version failed on the device
	stateOutdated  = "outdated"  // an older version is on the device, nothing outstanding
)

type rolloutDevice struct {
	KID, State string
	Sequence   uint64 // installed version; 0 none
	At         time.Time
	Detail     string
}

type rolloutData struct {
	Component admin.ComponentDetail
	Latest    uint64
	Counts    map[string]int
	Devices   []rolloutDevice
	Truncated bool
	Chart     template.HTML
}

// rollout shows where the latest version of a component stands. The TAM
// keeps no history of states, so the chart is derived from what it stores
// (docs/console.md): when each device got the latest version (the time of
// its inventory entry), when its last failed attempt was, and when each
// outstanding Update was sent.
func (c *Console) rollout(q *req) error {
	id := q.r.PathValue("id")
	var cd admin.ComponentDetail
	if err := c.call(q.r, q.s.secret, "GET", api+"components/"+url.PathEscape(id), "", nil, &cd); err != nil {
		return err
	}
	var ds []admin.Device
	if err := c.call(q.r, q.s.secret, "GET", api+"devices", "", nil, &ds); err != nil {
		return err
	}
	d := rolloutData{Component: cd, Latest: cd.LatestSequence, Counts: map[string]int{}}
	if len(ds) > MaxRolloutDevices {
		ds, d.Truncated = ds[:MaxRolloutDevices], true
	}
	for _, x := range ds {
		var dd admin.DeviceDetail
		if err := c.call(q.r, q.s.secret, "GET", api+"devices/"+x.KID+"?reports=0", "", nil, &dd); err != nil {
			return err
		}
		if rd, ok := deviceState(dd, cd.ID, cd.LatestSequence); ok {
			d.Devices = append(d.Devices, rd)
			d.Counts[rd.State]++
		}
	}
	sort.Slice(d.Devices, func(i, j int) bool { return d.Devices[i].KID < d.Devices[j].KID })
	start := c.cfg.Clock()
	for _, v := range cd.VersionList {
		if v.Sequence == cd.LatestSequence {
			start = v.CreatedAt
		}
	}
	d.Chart = chart(d.Devices, start, c.cfg.Clock())
	return c.render(q, http.StatusOK, "rollout", &view{Title: "Rollout of " + cd.Name, Nav: "components", Refresh: 1, Data: d})
}

// deviceState places a device in the rollout; ok is false when the device
// has nothing to do with the component.
func deviceState(dd admin.DeviceDetail, id string, latest uint64) (rolloutDevice, bool) {
	rd := rolloutDevice{KID: dd.KID}
	for _, ic := range dd.Components {
		if ic.ID == id {
			rd.Sequence, rd.At = ic.Sequence, ic.UpdatedAt
		}
	}
	for _, f := range dd.Failures {
		if f.Component == id && f.Sequence >= latest && rd.Sequence < latest {
			rd.State, rd.At, rd.Detail = stateFailed, f.LastAt, fmt.Sprintf("%d attempts: %s", f.Attempts, f.LastError)
			return rd, true
		}
	}
	for _, p := range dd.Pending {
		for _, m := range p.Install {
			if m.Component == id {
				rd.State, rd.At, rd.Detail = statePending, p.CreatedAt, fmt.Sprintf("version %d sent", m.Sequence)
				return rd, true
			}
		}
	}
	switch {
	case rd.Sequence >= latest && rd.Sequence > 0:
		rd.State = stateInstalled
	case rd.Sequence > 0 || rd.At != (time.Time{}):
		rd.State = stateOutdated
	default:
		return rd, false
	}
	return rd, true
}

// Chart geometry (SVG user units).
const (
	chartW, chartH         = 640, 220
	padL, padR, padT, padB = 44, 110, 14, 30
)

var chartColors = map[string]string{stateInstalled: "#2e7d32", statePending: "#f9a825", stateFailed: "#c62828"}

// chart draws, for each of installed, pending and failed, how many devices
// had reached that state by each time since the latest version was
// uploaded: a step line per state. Everything is escaped or numeric; the
// SVG is inline markup, which the CSP allows (no script, no style
// attribute).
func chart(devs []rolloutDevice, start, now time.Time) template.HTML {
	states := []string{stateInstalled, statePending, stateFailed}
	times := map[string][]time.Time{}
	for _, d := range devs {
		if _, ok := chartColors[d.State]; ok {
			t := d.At
			if t.IsZero() || t.Before(start) {
				t = start
			}
			times[d.State] = append(times[d.State], t)
		}
	}
	if !now.After(start) {
		now = start.Add(time.Second)
	}
	maxN := 1
	for _, s := range states {
		sort.Slice(times[s], func(i, j int) bool { return times[s][i].Before(times[s][j]) })
		maxN = max(maxN, len(times[s]))
	}
	span := now.Sub(start).Seconds()
	x := func(t time.Time) float64 {
		return padL + (t.Sub(start).Seconds()/span)*float64(chartW-padL-padR)
	}
	y := func(n int) float64 { return float64(chartH-padB) - float64(n)/float64(maxN)*float64(chartH-padT-padB) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" role="img" aria-label="devices per state over time">`, chartW, chartH)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="#bbb"/>`, padL, padT, chartW-padL-padR, chartH-padT-padB)
	for _, n := range []int{0, maxN / 2, maxN} {
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#444">%d</text>`, padL-6, y(n)+4, n)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, padL, y(n), chartW-padR, y(n))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#444">%s</text>`, padL, chartH-10, template.HTMLEscapeString(start.UTC().Format("2006-01-02 15:04:05")))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end" fill="#444">%s</text>`, chartW-padR, chartH-10, template.HTMLEscapeString(now.UTC().Format("15:04:05 UTC")))
	for i, s := range states {
		ts := times[s]
		pts := []string{fmt.Sprintf("%.1f,%.1f", x(start), y(0))}
		for k, t := range ts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(t), y(k)), fmt.Sprintf("%.1f,%.1f", x(t), y(k+1)))
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(now), y(len(ts))))
		fmt.Fprintf(&b, `<polyline class="series-%s" fill="none" stroke="%s" stroke-width="2.5" points="%s"/>`, s, chartColors[s], strings.Join(pts, " "))
		ly := padT + 16 + i*20
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`, chartW-padR+12, ly-10, chartColors[s])
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" fill="#222">%s %d</text>`, chartW-padR+30, ly, s, len(ts))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text only
}

var funcs = template.FuncMap{
	"short": short,
	"time": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05")
		}
		return ""
	},
	"join":     strings.Join,
	"pathesc":  url.PathEscape,
	"queryesc": url.QueryEscape,
	"stateclass": func(s string) string {
		switch {
		case s == "ok" || s == stateInstalled || s == "affirming":
			return "good"
		case failing[s] || s == stateFailed || s == "contraindicated":
			return "bad"
		}
		return "warn"
	},
	"count": func(m map[string]int, k string) int { return m[k] },
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, fmt.Errorf("dict: odd number of arguments")
		}
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
	"path": func(parts ...string) string {
		return strings.Join(parts, "")
	},
}
