package console

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/teep-go/teep/internal/tam/admin"
)

const api = admin.Prefix

// Device statuses the overview counts as failing: they stay until an
// operator resets the device or a later session clears them.
var failing = map[string]bool{"failed": true, "incompatible": true, "rejected": true, "error": true}

// ---- overview

type overviewData struct {
	Devices, Compliant, Pending, Failing int
	CompliancePct                        int
	ByStatus                             []countRow
	FailingDevices                       []admin.Device
	Recent                               []sessionRow
	Components, Policies                 int
}

type countRow struct {
	Name  string
	Count int
}

// sessionRow is one report of a device: what the TAM keeps of a session.
type sessionRow struct {
	KID string
	admin.Report
}

// recentDevices is how many most recently seen devices the overview reads
// the reports of.
const recentDevices = 10

func (c *Console) overview(q *req) error {
	var ds []admin.Device
	if err := c.call(q.r, q.s.secret, "GET", api+"devices", "", nil, &ds); err != nil {
		return err
	}
	d := overviewData{Devices: len(ds)}
	by := map[string]int{}
	for _, x := range ds {
		by[x.Status]++
		switch {
		case x.Status == "ok":
			d.Compliant++
		case failing[x.Status]:
			d.Failing++
			d.FailingDevices = append(d.FailingDevices, x)
		default:
			d.Pending++
		}
	}
	if d.Devices > 0 {
		d.CompliancePct = d.Compliant * 100 / d.Devices
	}
	for k, n := range by {
		d.ByStatus = append(d.ByStatus, countRow{k, n})
	}
	sort.Slice(d.ByStatus, func(i, j int) bool { return d.ByStatus[i].Name < d.ByStatus[j].Name })
	seen := append([]admin.Device(nil), ds...)
	sort.Slice(seen, func(i, j int) bool { return lastSeen(seen[i]).After(lastSeen(seen[j])) })
	for _, x := range seen[:min(len(seen), recentDevices)] {
		if x.LastSeen == nil {
			break
		}
		var dd admin.DeviceDetail
		if err := c.call(q.r, q.s.secret, "GET", api+"devices/"+x.KID+"?reports=5", "", nil, &dd); err != nil {
			return err
		}
		for _, rp := range dd.Reports {
			d.Recent = append(d.Recent, sessionRow{KID: x.KID, Report: rp})
		}
	}
	sort.Slice(d.Recent, func(i, j int) bool { return d.Recent[i].At.After(d.Recent[j].At) })
	d.Recent = d.Recent[:min(len(d.Recent), 15)]
	var cs []admin.Component
	if err := c.call(q.r, q.s.secret, "GET", api+"components", "", nil, &cs); err != nil {
		return err
	}
	var ps []admin.Policy
	if err := c.call(q.r, q.s.secret, "GET", api+"policies", "", nil, &ps); err != nil {
		return err
	}
	d.Components, d.Policies = len(cs), len(ps)
	return c.render(q, http.StatusOK, "overview", &view{Title: "Overview", Nav: "overview", Refresh: 1, Data: d})
}

func lastSeen(d admin.Device) time.Time {
	if d.LastSeen == nil {
		return time.Time{}
	}
	return *d.LastSeen
}

// ---- devices

type devicesData struct {
	Label, Status, Component string
	Devices                  []admin.Device
	Total                    int
	Statuses                 []string
}

func (c *Console) devices(q *req) error {
	var ds []admin.Device
	if err := c.call(q.r, q.s.secret, "GET", api+"devices", "", nil, &ds); err != nil {
		return err
	}
	f := q.r.URL.Query()
	d := devicesData{Label: f.Get("label"), Status: f.Get("status"), Component: f.Get("component"), Total: len(ds),
		Statuses: []string{"registered", "ok", "pending", "retry", "failed", "incompatible", "rejected", "error"}}
	for _, x := range ds {
		if d.Label != "" && !contains(x.Labels, d.Label) {
			continue
		}
		if d.Status != "" && x.Status != d.Status {
			continue
		}
		if d.Component != "" && !hasComponent(x, d.Component) {
			continue
		}
		d.Devices = append(d.Devices, x)
	}
	return c.render(q, http.StatusOK, "devices", &view{Title: "Devices", Nav: "devices", Data: d})
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// hasComponent matches a component by id (hex) or by a part of its name.
func hasComponent(d admin.Device, ref string) bool {
	for _, ic := range d.Components {
		if ic.ID == strings.ToLower(ref) || strings.Contains(ic.Name, ref) {
			return true
		}
	}
	return false
}

func (c *Console) device(q *req) error {
	kid := q.r.PathValue("kid")
	var dd admin.DeviceDetail
	if err := c.call(q.r, q.s.secret, "GET", api+"devices/"+url.PathEscape(kid)+"?reports=20", "", nil, &dd); err != nil {
		return err
	}
	return c.render(q, http.StatusOK, "device", &view{Title: "Device " + short(dd.KID), Nav: "devices", Refresh: 1, Data: dd})
}

func (c *Console) deviceLabels(q *req) error {
	kid := q.r.PathValue("kid")
	// Non-nil so that clearing every label sends [] rather than null.
	labels := append([]string{}, strings.FieldsFunc(q.r.PostFormValue("labels"), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	})...)
	body, _ := json.Marshal(admin.LabelsRequest{Labels: labels})
	if err := c.call(q.r, q.s.secret, "PUT", api+"devices/"+url.PathEscape(kid)+"/labels", "application/json", body, nil); err != nil {
		return err
	}
	return c.done(q, Prefix+"devices/"+url.PathEscape(kid), "labels set")
}

func (c *Console) deviceReattest(q *req) error {
	return c.deviceAction(q, "reattest", "attestation asked for at the next session")
}
func (c *Console) deviceReset(q *req) error {
	return c.deviceAction(q, "reset", "failures cleared")
}

func (c *Console) deviceAction(q *req, action, msg string) error {
	kid := q.r.PathValue("kid")
	if err := c.call(q.r, q.s.secret, "POST", api+"devices/"+url.PathEscape(kid)+"/"+action, "", nil, nil); err != nil {
		return err
	}
	return c.done(q, Prefix+"devices/"+url.PathEscape(kid), msg)
}

func short(kid string) string {
	if len(kid) > 16 {
		return kid[:16] + "…"
	}
	return kid
}

// ---- components

func (c *Console) components(q *req) error {
	var cs []admin.Component
	if err := c.call(q.r, q.s.secret, "GET", api+"components", "", nil, &cs); err != nil {
		return err
	}
	return c.render(q, http.StatusOK, "components", &view{Title: "Components", Nav: "components", Data: cs})
}

func (c *Console) uploadComponent(q *req) error {
	f, _, err := q.r.FormFile("envelope")
	if err != nil {
		return badForm("choose a SUIT envelope file to upload")
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, c.cfg.MaxUploadBytes+1))
	if err != nil {
		return badForm("reading the file: %v", err)
	}
	if len(body) == 0 {
		return badForm("the file is empty")
	}
	var v admin.Version
	if err := c.call(q.r, q.s.secret, "POST", api+"components", "application/suit-envelope+cose", body, &v); err != nil {
		return err
	}
	return c.done(q, Prefix+"components/"+v.ComponentID, "registered "+v.Name+" version "+strconv.FormatUint(v.Sequence, 10))
}

type componentData struct {
	admin.ComponentDetail
	Versions []versionRow
	Devices  int
}

type versionRow struct {
	admin.Version
	Devices int // devices holding this version
}

func (c *Console) component(q *req) error {
	id := q.r.PathValue("id")
	var cd admin.ComponentDetail
	if err := c.call(q.r, q.s.secret, "GET", api+"components/"+url.PathEscape(id), "", nil, &cd); err != nil {
		return err
	}
	var ds []admin.Device
	if err := c.call(q.r, q.s.secret, "GET", api+"devices", "", nil, &ds); err != nil {
		return err
	}
	count := map[uint64]int{}
	d := componentData{ComponentDetail: cd}
	for _, x := range ds {
		for _, ic := range x.Components {
			if ic.ID == cd.ID {
				count[ic.Sequence]++
				d.Devices++
			}
		}
	}
	for i := len(cd.VersionList) - 1; i >= 0; i-- {
		v := cd.VersionList[i]
		d.Versions = append(d.Versions, versionRow{Version: v, Devices: count[v.Sequence]})
	}
	return c.render(q, http.StatusOK, "component", &view{Title: cd.Name, Nav: "components", Data: d})
}

// ---- policies

type policiesData struct {
	Policies   []admin.Policy
	Components []admin.Component
}

func (c *Console) policies(q *req) error {
	var d policiesData
	if err := c.call(q.r, q.s.secret, "GET", api+"policies", "", nil, &d.Policies); err != nil {
		return err
	}
	if err := c.call(q.r, q.s.secret, "GET", api+"components", "", nil, &d.Components); err != nil {
		return err
	}
	return c.render(q, http.StatusOK, "policies", &view{Title: "Policies", Nav: "policies", Data: d})
}

// setPolicy adds a policy or, for an existing component and scope, changes
// its mode (the API's POST /policies does both).
func (c *Console) setPolicy(q *req) error {
	f := q.r.PostForm
	p := admin.Policy{Component: f.Get("component"), Mode: f.Get("mode"), Scope: f.Get("scope"), Value: strings.TrimSpace(f.Get("value"))}
	if p.Component == "" {
		return badForm("choose a component")
	}
	if p.Scope == "all" {
		p.Value = ""
	}
	body, _ := json.Marshal(p)
	var out admin.Policy
	if err := c.call(q.r, q.s.secret, "POST", api+"policies", "application/json", body, &out); err != nil {
		return err
	}
	return c.done(q, Prefix+"policies", "policy "+strconv.FormatInt(out.ID, 10)+" set: "+out.ComponentName+" "+out.Mode+" on "+out.Scope+" "+out.Value)
}

func (c *Console) deletePolicy(q *req) error {
	id, err := strconv.ParseInt(q.r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return badForm("policy id: want a positive integer")
	}
	if err := c.call(q.r, q.s.secret, "DELETE", api+"policies?id="+strconv.FormatInt(id, 10), "", nil, nil); err != nil {
		return err
	}
	return c.done(q, Prefix+"policies", "policy "+strconv.FormatInt(id, 10)+" removed")
}

// ---- trust anchors

type trustData struct {
	Signers, Verifiers []admin.TrustedKey
	TAM                admin.Info
}

func (c *Console) trust(q *req) error {
	var d trustData
	if err := c.call(q.r, q.s.secret, "GET", api+"trust/"+admin.TrustSigners, "", nil, &d.Signers); err != nil {
		return err
	}
	if err := c.call(q.r, q.s.secret, "GET", api+"trust/"+admin.TrustVerifiers, "", nil, &d.Verifiers); err != nil {
		return err
	}
	if err := c.call(q.r, q.s.secret, "GET", api+"tam", "", nil, &d.TAM); err != nil {
		return err
	}
	return c.render(q, http.StatusOK, "trust", &view{Title: "Trust anchors", Nav: "trust", Data: d})
}

func trustRole(s string) (string, error) {
	if s != admin.TrustSigners && s != admin.TrustVerifiers {
		return "", badForm("trust role %q: want %s or %s", s, admin.TrustSigners, admin.TrustVerifiers)
	}
	return s, nil
}

func (c *Console) addTrust(q *req) error {
	role, err := trustRole(q.r.PathValue("role"))
	if err != nil {
		return err
	}
	key := []byte(strings.TrimSpace(q.r.PostFormValue("key")))
	if f, _, err := q.r.FormFile("keyfile"); err == nil {
		defer f.Close()
		if b, err := io.ReadAll(io.LimitReader(f, admin.MaxKeyBytes+1)); err == nil && len(b) > 0 {
			key = b
		}
	}
	if len(key) == 0 {
		return badForm("paste a public key (PEM, COSE_Key or JWK) or choose its file")
	}
	var k admin.TrustedKey
	path := api + "trust/" + role + "?comment=" + url.QueryEscape(q.r.PostFormValue("comment"))
	if err := c.call(q.r, q.s.secret, "POST", path, "application/octet-stream", key, &k); err != nil {
		return err
	}
	return c.done(q, Prefix+"trust", "trusted "+k.Type+" key "+short(k.KID)+" as "+role)
}

func (c *Console) deleteTrust(q *req) error {
	role, err := trustRole(q.r.PathValue("role"))
	if err != nil {
		return err
	}
	kid := q.r.PathValue("kid")
	if err := c.call(q.r, q.s.secret, "DELETE", api+"trust/"+role+"/"+url.PathEscape(kid), "", nil, nil); err != nil {
		return err
	}
	return c.done(q, Prefix+"trust", "key "+short(kid)+" no longer trusted")
}

// ---- tokens

type tokensData struct {
	Tokens []admin.APIToken
	Roles  []string
}

func (c *Console) tokens(q *req) error {
	var d tokensData
	if err := c.call(q.r, q.s.secret, "GET", api+"tokens", "", nil, &d.Tokens); err != nil {
		return err
	}
	d.Roles = []string{"read-only", "operator", "admin"}
	if q.who.Role == "provider" {
		d.Roles = append(d.Roles, "provider")
	}
	return c.render(q, http.StatusOK, "tokens", &view{Title: "API tokens", Nav: "tokens", Data: d})
}

func (c *Console) createToken(q *req) error {
	f := q.r.PostForm
	in := admin.NewAPIToken{Name: strings.TrimSpace(f.Get("name")), Role: f.Get("role"), Tenant: strings.TrimSpace(f.Get("tenant"))}
	if v := strings.TrimSpace(f.Get("expires")); v != "" {
		// <input type=date>: the token expires at the start of that day, UTC.
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return badForm("expires: want a date (YYYY-MM-DD)")
		}
		in.ExpiresAt = t.UTC()
	}
	body, _ := json.Marshal(in)
	var out admin.CreatedAPIToken
	if err := c.call(q.r, q.s.secret, "POST", api+"tokens", "application/json", body, &out); err != nil {
		return err
	}
	c.sessions.setFlash(q.s, "token "+out.ID+" ("+out.Role+") created: copy its secret now, it is not shown again", "", out.Secret)
	http.Redirect(q.w, q.r, Prefix+"tokens", http.StatusSeeOther)
	return nil
}

func (c *Console) revokeToken(q *req) error {
	id := q.r.PathValue("id")
	if err := c.call(q.r, q.s.secret, "DELETE", api+"tokens/"+url.PathEscape(id), "", nil, nil); err != nil {
		return err
	}
	return c.done(q, Prefix+"tokens", "token "+id+" revoked")
}

// ---- audit log

// auditPage is how many entries a page of the audit log shows.
const auditPage = 50

func (c *Console) audit(q *req) error {
	path := api + "audit?limit=" + strconv.Itoa(auditPage)
	if b := q.r.URL.Query().Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return badForm("before: want a positive entry id")
		}
		path += "&before=" + strconv.FormatInt(n, 10)
	}
	var p admin.AuditPage
	if err := c.call(q.r, q.s.secret, "GET", path, "", nil, &p); err != nil {
		return err
	}
	return c.render(q, http.StatusOK, "audit", &view{Title: "Audit log", Nav: "audit", Data: p})
}
