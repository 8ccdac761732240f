package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// EnvScreenshots names a directory for the browser test's screenshots
// (kept after the test); without it they go to a temporary directory.
// docs/console.png is the rollout page taken with it set.
const EnvScreenshots = "TEEP_CONSOLE_SCREENSHOTS"

// chromium finds Debian's chromium (or another Chromium-based browser).
// Under CI=true a missing browser fails the test: .ci/run installs one.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("browser test: no chromium on PATH under CI=true (.ci/run installs Debian's chromium)")
	}
	t.Skip("browser test NOT RUN: no chromium on PATH (apt-get install chromium; .ci/run does)")
	return ""
}

// page drives one headless Chromium tab against the console.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // screenshot directory
}

func newPage(t *testing.T, base string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
		// CI runs as root, where Chromium's sandbox cannot start; the
		// pages are our own on loopback.
		chromedp.NoSandbox,
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	dir := os.Getenv(EnvScreenshots)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return &page{t: t, ctx: ctx, base: base, shot: dir}
}

func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p *page) open(path string) {
	p.t.Helper()
	p.run("open "+path, chromedp.Navigate(p.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// text is the visible text of the first element matching sel, "" if none.
func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := p.textErr(sel)
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (p *page) textErr(sel string) (string, error) {
	return chromedp.Run(p.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel)))
}

func (p *page) count(sel string) int {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		p.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(p.shot, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// submit clicks a button and waits for the page it leads to: every
// answer to a console form carries a flash or an error.
func (p *page) submit(button string) {
	p.t.Helper()
	p.run("submit "+button, chromedp.Click(chromedp.CSS(button)))
	p.waitFor("the answer to "+button, 30*time.Second, func() (bool, error) {
		n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#flash, #error").length`))
		return n > 0, err
	})
}

// waitFor polls the page, which may be reloading itself (meta refresh):
// an evaluation that meets a navigation is tried again.
func (p *page) waitFor(what string, limit time.Duration, ok func() (bool, error)) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	var last error
	for {
		done, err := ok()
		if done {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waited %v for %s (last error: %v)", limit, what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *page) signIn(token string) {
	p.t.Helper()
	p.open("/console/login")
	p.run("sign in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#who")))
}

// TestConsoleInBrowser drives the console in headless Chromium as an
// operator would: sign in, trust a signer, register a component from a
// file, require it by policy, watch a real device (software TEE, HTTP
// over loopback) install it while its page reloads itself, then sign in
// read-only and fail to change anything, even with a forged form.
func TestConsoleInBrowser(t *testing.T) {
	state := filepath.Join(t.TempDir(), "device")
	attest, err := device.Provision(state, "main")
	if err != nil {
		t.Fatal(err)
	}
	srv := tamtest.Start(t, tamtest.Options{Endorse: attest})
	ro, err := srv.Client.CreateToken(context.Background(), admin.NewAPIToken{Name: "auditor", Role: "read-only"})
	if err != nil {
		t.Fatal(err)
	}
	signer := tamtest.Signer(t)
	envelope := filepath.Join(t.TempDir(), "app.suit")
	if err := os.WriteFile(envelope, tamtest.Envelope(t, signer, "app", 1, []byte("app v1 for the browser test")), 0o644); err != nil {
		t.Fatal(err)
	}
	signerPEM, err := signer.PublicKey().MarshalPEM(false)
	if err != nil {
		t.Fatal(err)
	}

	// The device registers first, with nothing to install.
	dev, err := device.Open(context.Background(), device.Options{StateDir: state, TAM: srv.URL, TEEs: []string{"main"},
		TAMKeys: srv.Keys(), SignerKeys: []*cosekey.Key{signer.PublicKey()},
		Retry: broker.Retry{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}, Once: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if err := dev.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	devices, err := srv.Client.Devices(context.Background())
	if err != nil || len(devices) != 1 {
		t.Fatalf("devices after the first session: %v %v", devices, err)
	}
	kid := devices[0].KID

	p := newPage(t, srv.BaseURL)
	p.signIn(srv.Token)
	if who := p.text("#who"); !strings.Contains(who, "admin") {
		t.Fatalf("signed in as %q", who)
	}

	// Trust the signer: paste its PEM into the Trusted Component signers form.
	p.open("/console/trust")
	p.run("paste signer key", chromedp.SetValue(chromedp.CSS(`form[action="/console/trust/tc-signers"] textarea[name=key]`), string(signerPEM)),
		chromedp.SendKeys(chromedp.CSS(`form[action="/console/trust/tc-signers"] input[name=comment]`), "browser test signer"))
	p.submit(`form[action="/console/trust/tc-signers"] button`)
	if e := p.text("#error"); e != "" {
		t.Fatalf("trusting the signer: %s", e)
	}
	if keys, err := srv.Client.TrustedKeys(context.Background(), "tc-signers"); err != nil || len(keys) != 1 || keys[0].Comment != "browser test signer" {
		t.Fatalf("trusted signers after the form: %+v %v", keys, err)
	}

	// Register the component from its file.
	p.open("/console/components")
	p.run("choose envelope", chromedp.SetUploadFiles(chromedp.CSS("#envelope"), []string{envelope}))
	p.submit("#upload")
	if e := p.text("#error"); e != "" {
		t.Fatalf("registering the component: %s", e)
	}
	p.open("/console/components")
	if tbl := p.text("#components"); !strings.Contains(tbl, "app") {
		t.Fatalf("components page after upload:\n%s", tbl)
	}
	comps, err := srv.Client.Components(context.Background())
	if err != nil || len(comps) != 1 {
		t.Fatalf("components: %+v %v", comps, err)
	}
	p.screenshot("components")

	// Require it on every device.
	p.open("/console/policies")
	p.run("fill policy", chromedp.SetValue(chromedp.CSS("#policy-component"), comps[0].ID),
		chromedp.SetValue(chromedp.CSS(`#policy-form select[name=mode]`), "required"),
		chromedp.SetValue(chromedp.CSS(`#policy-form select[name=scope]`), "all"))
	p.submit("#set-policy")
	if e := p.text("#error"); e != "" {
		t.Fatalf("setting the policy: %s", e)
	}
	if tbl := p.text("#policies"); !strings.Contains(tbl, "required") {
		t.Fatalf("policies page after setting one:\n%s", tbl)
	}
	p.screenshot("policies")

	// Watch the device's page: it reloads itself; the device installs.
	p.open("/console/devices/" + kid)
	if tbl := p.text("#installed"); !strings.Contains(tbl, "nothing installed") {
		t.Fatalf("device page before the install:\n%s", tbl)
	}
	synced := make(chan error, 1)
	go func() { synced <- dev.Run(context.Background()) }()
	p.waitFor("the device page to show the install", time.Minute, func() (bool, error) {
		tbl, err := p.textErr("#installed")
		return strings.Contains(tbl, "app"), err
	})
	if err := <-synced; err != nil {
		t.Fatalf("device session: %v", err)
	}
	p.screenshot("device")
	if got := installedOn(dev.Status(context.Background()), "app"); !got {
		t.Fatalf("the device does not hold the component: %+v", dev.Status(context.Background()))
	}

	p.open("/console/components/" + comps[0].ID + "/rollout")
	if n := p.text("#n-installed"); n != "1" {
		t.Fatalf("rollout page: %q installed", n)
	}
	if p.count("svg") == 0 {
		t.Fatal("rollout page draws no chart")
	}
	p.screenshot("rollout")
	p.open("/console/")
	p.screenshot("overview")
	p.open("/console/audit")
	if log := p.text("main"); !strings.Contains(log, "POST /admin/v1/policies") || !strings.Contains(log, "POST /admin/v1/components") {
		t.Fatalf("audit page shows no policy change:\n%s", log)
	}
	p.screenshot("audit")

	// Read-only: no form to change anything, and a forged one is refused.
	p.run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	p.open("/console/policies")
	if n := p.count("#who"); n != 0 {
		t.Fatal("still signed in after signing out")
	}
	p.signIn(ro.Secret)
	for _, path := range []string{"/console/policies", "/console/components", "/console/trust", "/console/devices/" + kid} {
		p.open(path)
		if n := p.count("main form"); n != 0 {
			t.Errorf("%s offers a read-only token %d forms", path, n)
		}
	}
	p.open("/console/policies")
	// A form the page does not offer, built in the page and posted with
	// the session's own CSRF token: the admin API's role check refuses it.
	p.run("forge a policy form", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const f = document.createElement("form");
		f.method = "post"; f.action = "/console/policies";
		const add = (n, v) => { const i = document.createElement("input"); i.type = "hidden"; i.name = n; i.value = v; f.appendChild(i); };
		add("csrf", document.querySelector("input[name=csrf]").value);
		add("component", %q); add("mode", "optional"); add("scope", "all"); add("value", "");
		f.id = "forged"; const b = document.createElement("button"); b.id = "forged-submit"; f.appendChild(b);
		document.querySelector("main").appendChild(f);
		return true;
	})()`, comps[0].ID)))
	p.submit("#forged-submit")
	if e := p.text("#error"); !strings.Contains(e, "403") {
		t.Fatalf("forged change by a read-only token answered %q", e)
	}
	p.screenshot("read-only-refused")
	pols, err := srv.Client.Policies(context.Background())
	if err != nil || len(pols) != 1 || pols[0].Mode != "required" {
		t.Fatalf("policies after the read-only attempt: %+v %v", pols, err)
	}
	t.Logf("screenshots in %s", p.shot)
}

func installedOn(tees []broker.TEEStatus, name string) bool {
	want := tamtest.ManifestID(name)
	for _, tee := range tees {
		for _, c := range tee.Components {
			if c.ManifestID.Equal(want) {
				return true
			}
		}
	}
	return false
}
