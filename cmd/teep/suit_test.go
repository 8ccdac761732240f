package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/suit"
)

const suitVectors = "../../testdata/suit"

func suitRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return teepRun(t, nil, args...)
}

func suitMust(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := suitRun(t, args...)
	if code != 0 {
		t.Fatalf("teep %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

const (
	suitTEEPVendor = "c0ddd5f1-5243-5660-87db-4f5b0aa26c2f"
	suitTEEPClass  = "db42f709-3d8c-55ba-a8c5-265fc5820f4e"
)

func suitKeyPath(name string) string { return filepath.Join(suitVectors, "keys", name) }

type suitProcessOut struct {
	Result     string `json:"result"`
	Components []struct {
		ID     []string `json:"id"`
		SHA256 string   `json:"sha256"`
		Size   int64    `json:"size"`
		Action string   `json:"action"`
	} `json:"components"`
	Report struct {
		Success bool   `json:"success"`
		CBOR    string `json:"cbor"`
		Nonce   string `json:"nonce"`
	} `json:"report"`
}

func suitDecodeProcess(t *testing.T, out string) suitProcessOut {
	t.Helper()
	var p suitProcessOut
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("process output is not JSON: %v\n%s", err, out)
	}
	return p
}

func TestSuitCreateInspectVerifyProcess(t *testing.T) {
	dir := t.TempDir()
	priv, pub, _ := eatKey(t, dir, "signer", "esp256")
	payload := filepath.Join(dir, "ta.bin")
	os.WriteFile(payload, []byte("Hello, Secure World!"), 0o600)
	env := filepath.Join(dir, "ta.suit")
	suitMust(t, "suit", "create", "--component-id", "TEEP-Device", "--component-id", "SecureFS",
		"--component-id", "hex:8d82573a926d4754935332dc29997f74", "--component-id", "ta",
		"--payload", payload, "--integrated", "--sequence", "5", "--vendor-id", suitTEEPVendor,
		"--class-id", suitTEEPClass, "--key", priv, "--out", env)

	var ins suit.InspectView
	if err := json.Unmarshal([]byte(suitMust(t, "suit", "inspect", "--json", env)), &ins); err != nil {
		t.Fatal(err)
	}
	wantComp := []string{hex.EncodeToString([]byte("TEEP-Device")), hex.EncodeToString([]byte("SecureFS")), "8d82573a926d4754935332dc29997f74", "7461"}
	if ins.SequenceNumber != 5 || len(ins.Components) != 1 || strings.Join(ins.Components[0], ",") != strings.Join(wantComp, ",") {
		t.Fatalf("inspect: %+v", ins)
	}
	if ins.ManifestComponentID[3] != hex.EncodeToString([]byte("suit")) || len(ins.Authentication) != 1 || ins.Authentication[0].Alg != "ESP256" {
		t.Fatalf("inspect: %+v", ins)
	}
	if len(ins.Integrated) != 1 || ins.Integrated[0].Key != "#payload" {
		t.Fatalf("integrated: %+v", ins.Integrated)
	}
	if len(ins.SeverableMembers) != 1 || ins.SeverableMembers[0].Name != "install" || !ins.SeverableMembers[0].Present || len(ins.Dependencies) != 0 {
		t.Fatalf("severable/dependencies: %+v", ins)
	}
	var dep suit.InspectView
	if err := json.Unmarshal([]byte(suitMust(t, "suit", "inspect", "--json", filepath.Join(suitVectors, "teep-protocol", "suit_personalization.hex"))), &dep); err != nil {
		t.Fatal(err)
	}
	if len(dep.Dependencies) != 1 || dep.Dependencies[0].Prefix[2] != "8d82573a926d4754935332dc29997f74" || dep.Dependencies[0].Index != 1 {
		t.Fatalf("dependencies: %+v", dep.Dependencies)
	}
	text := suitMust(t, "suit", "inspect", env)
	for _, want := range []string{"manifest-sequence-number: 5", "manifest-digest: " + ins.ManifestDigest.Hex, "COSE_Sign1 alg ESP256"} {
		if !strings.Contains(text, want) {
			t.Errorf("text inspect lacks %q:\n%s", want, text)
		}
	}

	suitMust(t, "suit", "verify", "--key", pub, env)
	_, other, _ := eatKey(t, dir, "other", "esp256")
	if _, _, code := suitRun(t, "suit", "verify", "--key", other, env); code != 1 {
		t.Errorf("verify with a wrong key: exit %d", code)
	}

	store := filepath.Join(dir, "store")
	out := suitMust(t, "suit", "process", "--trust", pub, "--store", store, "--vendor-id", suitTEEPVendor,
		"--class-id", suitTEEPClass, "--nonce", "a0a1", env)
	p := suitDecodeProcess(t, out)
	sum := sha256.Sum256([]byte("Hello, Secure World!"))
	if p.Result != "success" || len(p.Components) != 1 || p.Components[0].SHA256 != hex.EncodeToString(sum[:]) ||
		p.Components[0].Size != 20 || strings.Join(p.Components[0].ID, ",") != strings.Join(wantComp, ",") {
		t.Fatalf("process: %s", out)
	}
	if !p.Report.Success || p.Report.Nonce != "a0a1" || p.Report.CBOR == "" {
		t.Fatalf("report: %+v", p.Report)
	}

	// Rollback: a lower sequence number is refused and changes nothing.
	old := filepath.Join(dir, "old.suit")
	os.WriteFile(payload, []byte("older TA"), 0o600)
	suitMust(t, "suit", "create", "--component-id", "TEEP-Device", "--component-id", "SecureFS",
		"--component-id", "hex:8d82573a926d4754935332dc29997f74", "--component-id", "ta",
		"--payload", payload, "--integrated", "--sequence", "4", "--key", priv, "--out", old)
	out, errs, code := suitRun(t, "suit", "process", "--trust", pub, "--store", store, old)
	if code != 1 || !strings.Contains(errs, "rollback") || suitDecodeProcess(t, out).Result != "failure" {
		t.Fatalf("rollback: exit %d %s %s", code, errs, out)
	}

	// Uninstall by manifest component id.
	// The shared sequence (identity checks) runs before uninstall too.
	if _, _, code := suitRun(t, "suit", "uninstall", "--store", store, "--manifest-id", "TEEP-Device", "--manifest-id", "SecureFS",
		"--manifest-id", "hex:8d82573a926d4754935332dc29997f74", "--manifest-id", "suit"); code != 1 {
		t.Fatalf("uninstall without the device identity: exit %d", code)
	}
	out = suitMust(t, "suit", "uninstall", "--store", store, "--vendor-id", suitTEEPVendor, "--class-id", suitTEEPClass, "--manifest-id", "TEEP-Device", "--manifest-id", "SecureFS",
		"--manifest-id", "hex:8d82573a926d4754935332dc29997f74", "--manifest-id", "suit")
	p = suitDecodeProcess(t, out)
	if p.Result != "success" || len(p.Components) != 1 || p.Components[0].Action != "removed" {
		t.Fatalf("uninstall: %s", out)
	}
	var list struct {
		Manifests  []any `json:"manifests"`
		Components []any `json:"components"`
	}
	if err := json.Unmarshal([]byte(suitMust(t, "suit", "list", "--store", store)), &list); err != nil {
		t.Fatal(err)
	}
	if list.Manifests == nil || len(list.Manifests) != 0 || list.Components == nil || len(list.Components) != 0 {
		t.Fatalf("store not empty: %+v", list)
	}
}

func TestSuitProcessTEEPVectors(t *testing.T) {
	dir := t.TempDir()
	ta := filepath.Join(suitVectors, "teep-protocol", "8d82573a-926d-4754-9353-32dc29997f74.ta")
	uri := filepath.Join(suitVectors, "teep-protocol", "suit_uri.hex")
	// --fetch-map serves the hex vector decoded? No: fetchers serve bytes as
	// they are, so give the manifest as raw CBOR.
	raw, _ := os.ReadFile(uri)
	b, _ := hex.DecodeString(strings.TrimSpace(string(raw)))
	rawURI := filepath.Join(dir, "ta.suit")
	os.WriteFile(rawURI, b, 0o600)
	store := filepath.Join(dir, "store")
	out := suitMust(t, "suit", "process", "--trust", suitKeyPath("example-p256-public.pem"), "--store", store,
		"--device-key", suitKeyPath("device-p256-private.pem"), "--vendor-id", suitTEEPVendor, "--class-id", suitTEEPClass,
		"--offline", "--fetch-map", "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.ta="+ta,
		"--fetch-map", "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.suit="+rawURI,
		filepath.Join(suitVectors, "teep-protocol", "suit_personalization.hex"))
	p := suitDecodeProcess(t, out)
	if p.Result != "success" || len(p.Components) != 2 {
		t.Fatalf("personalization: %s", out)
	}
	sum := sha256.Sum256([]byte(`{"name":"FOO Bar","secret":"0123456789abfcdef0123456789abcd"}`))
	found := false
	for _, c := range p.Components {
		found = found || c.SHA256 == hex.EncodeToString(sum[:])
	}
	if !found {
		t.Errorf("decrypted config.json not installed: %s", out)
	}
}

func TestSuitProcessFailures(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	trust := suitKeyPath("example-p256-public.pem")
	for _, tc := range []struct {
		name, file, reason string
	}{
		{"unsigned", "manifest-spec/example0.unsigned.cbor", "unauthorised"},
		{"dummy-digest", "manifest-spec/example0.signed.cbor", "condition-failed"},
		{"severed-install-missing", "manifest-spec/example2.severed-signed.cbor", "severing-unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := suitRun(t, "suit", "process", "--trust", trust, "--store", store, "--offline",
				"--vendor-id", "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe", "--class-id", "1492af14-2569-5e48-bf42-9b2d51f2ab45",
				filepath.Join(suitVectors, tc.file))
			if code != 1 || !strings.Contains(errs, tc.reason) {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			if p := suitDecodeProcess(t, out); p.Result != "failure" || p.Report.Success {
				t.Fatalf("output: %s", out)
			}
		})
	}
}

func TestSuitSignAndUsage(t *testing.T) {
	dir := t.TempDir()
	priv, pub, _ := eatKey(t, dir, "s", "ed25519")
	unsigned := filepath.Join(suitVectors, "manifest-spec", "example1.unsigned.cbor")
	if _, _, code := suitRun(t, "suit", "verify", "--key", pub, unsigned); code != 1 {
		t.Errorf("unsigned envelope verified")
	}
	signed := filepath.Join(dir, "signed.suit")
	suitMust(t, "suit", "sign", "--key", priv, "--out", signed, unsigned)
	suitMust(t, "suit", "verify", "--key", pub, signed)
	var ins suit.InspectView
	if err := json.Unmarshal([]byte(suitMust(t, "suit", "inspect", "--json", signed)), &ins); err != nil {
		t.Fatal(err)
	}
	if len(ins.Authentication) != 1 || ins.Authentication[0].Alg != "Ed25519" || ins.Authentication[0].KID == "" {
		t.Fatalf("signed: %+v", ins.Authentication)
	}
	for _, args := range [][]string{
		{"suit", "create", "--payload", "x"},
		{"suit", "inspect"},
		{"suit", "verify", signed},
		{"suit", "process", "--store", dir, signed},
		{"suit", "create", "--component-id", "a", "--payload", "x", "--integrated", "--uri", "https://x", "--sequence", "1", "--key", priv, "--out", "o"},
	} {
		if _, _, code := suitRun(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	for _, c := range []string{"create", "sign", "inspect", "verify", "process", "uninstall", "list", "report"} {
		out, _, code := suitRun(t, "suit", c, "--help")
		if code != 0 || !strings.Contains(out, "Usage: teep suit "+c) {
			t.Errorf("suit %s --help: exit %d", c, code)
		}
	}
	if _, errs, code := suitRun(t, "suit", "inspect", filepath.Join(dir, "missing")); code != 1 || errs == "" {
		t.Errorf("missing file: exit %d", code)
	}
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte{0xa1, 0x02}, 0o600)
	if _, errs, code := suitRun(t, "suit", "inspect", garbage); code != 1 || !strings.Contains(errs, "offset") {
		t.Errorf("garbage: exit %d %q", code, errs)
	}
}

func TestSuitEncryptedCreate(t *testing.T) {
	dir := t.TempDir()
	priv, pub, _ := eatKey(t, dir, "signer", "esp256")
	payload := filepath.Join(dir, "config.json")
	secret := []byte(`{"secret":"s3cr3t"}`)
	os.WriteFile(payload, secret, 0o600)
	env := filepath.Join(dir, "config.suit")
	for _, alg := range []string{"a128ctr", "a128gcm"} {
		suitMust(t, "suit", "create", "--component-id", "config.json", "--manifest-component-id", "config.suit",
			"--payload", payload, "--inline", "--sequence", "1", "--encrypt-to", suitKeyPath("device-p256-public.pem"),
			"--content-alg", alg, "--key", priv, "--out", env)
		raw, _ := os.ReadFile(env)
		if bytes.Contains(raw, secret) {
			t.Fatal("plaintext in the envelope")
		}
		store := filepath.Join(dir, "store-"+alg)
		if _, _, code := suitRun(t, "suit", "process", "--trust", pub, "--store", store, env); code != 1 {
			t.Fatal("processed without the device key")
		}
		out := suitMust(t, "suit", "process", "--trust", pub, "--store", store, "--device-key", suitKeyPath("device-p256-private.pem"), env)
		sum := sha256.Sum256(secret)
		if p := suitDecodeProcess(t, out); p.Components[0].SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: %s", alg, out)
		}
	}
}

func TestSuitReportCommand(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	out, _, _ := suitRun(t, "suit", "process", "--trust", suitKeyPath("example-p256-public.pem"), "--store", store, "--offline",
		filepath.Join(suitVectors, "manifest-spec", "example0.signed.cbor"))
	p := suitDecodeProcess(t, out)
	f := filepath.Join(dir, "report.hex")
	os.WriteFile(f, []byte(p.Report.CBOR), 0o600)
	var rep struct {
		Failure map[string]any `json:"failure"`
	}
	if err := json.Unmarshal([]byte(suitMust(t, "suit", "report", f)), &rep); err != nil || rep.Failure["reason"] != "condition-failed" {
		t.Fatalf("report: %+v %v", rep, err)
	}
	legacy := filepath.Join("..", "..", "testdata", "teep", "derived", "suit_report_appendix_f1_success.hex")
	if _, errs, code := suitRun(t, "suit", "report", legacy); code != 1 || !strings.Contains(errs, "pre-2024") {
		t.Errorf("legacy report: exit %d %q", code, errs)
	}
}

// TestSuitDependsOnURIAndUninstallNext: a TA fetched by --uri (hashed as a
// stream), personalization data created with --depends-on the TA, both
// installed in one process run, listed with their dependency links, and
// uninstalled together with another manifest through --next.
func TestSuitDependsOnURIAndUninstallNext(t *testing.T) {
	dir := t.TempDir()
	priv, pub, _ := eatKey(t, dir, "signer", "esp256")
	write := func(name string, data []byte) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	taCode, config, other := []byte("TA code"), []byte(`{"key":"value"}`), []byte("other")
	taBin, configFile, otherFile := write("ta.bin", taCode), write("config.json", config), write("other.bin", other)
	prefix := []string{"--component-id", "TEEP-Device", "--component-id", "SecureFS"}
	ta, conf, oth := filepath.Join(dir, "ta.suit"), filepath.Join(dir, "config.suit"), filepath.Join(dir, "other.suit")
	suitMust(t, append(append([]string{"suit", "create"}, prefix...), "--component-id", "hex:8d82573a926d4754935332dc29997f74",
		"--component-id", "ta", "--payload", taBin, "--uri", "https://example.org/ta.bin", "--sequence", "1", "--key", priv, "--out", ta)...)
	suitMust(t, append(append([]string{"suit", "create"}, prefix...), "--component-id", "config.json",
		"--payload", configFile, "--inline", "--depends-on", ta, "--sequence", "1", "--key", priv, "--out", conf)...)
	suitMust(t, "suit", "create", "--component-id", "other", "--payload", otherFile, "--integrated", "--sequence", "1", "--key", priv, "--out", oth)

	hexSeg := func(segs ...string) []string {
		out := make([]string, len(segs))
		for i, s := range segs {
			out[i] = hex.EncodeToString([]byte(s))
		}
		return out
	}
	taManifest := append(hexSeg("TEEP-Device", "SecureFS"), "8d82573a926d4754935332dc29997f74", hex.EncodeToString([]byte("suit")))
	var ins suit.InspectView
	if err := json.Unmarshal([]byte(suitMust(t, "suit", "inspect", "--json", conf)), &ins); err != nil {
		t.Fatal(err)
	}
	if len(ins.Dependencies) != 1 || strings.Join(ins.Dependencies[0].Prefix, ",") != strings.Join(taManifest, ",") ||
		len(ins.Integrated) != 1 || ins.Integrated[0].Key != "#dependency" {
		t.Fatalf("inspect: dependencies %v, integrated %+v", ins.Dependencies, ins.Integrated)
	}

	store := filepath.Join(dir, "store")
	out := suitMust(t, "suit", "process", "--trust", pub, "--store", store, "--offline",
		"--fetch-map", "https://example.org/ta.bin="+taBin, conf, oth)
	p := suitDecodeProcess(t, out)
	got := map[string]bool{}
	for _, c := range p.Components {
		got[c.SHA256+"/"+c.Action] = true
	}
	for _, b := range [][]byte{taCode, config, other} {
		sum := sha256.Sum256(b)
		if !got[hex.EncodeToString(sum[:])+"/installed"] {
			t.Errorf("%q not installed: %s", b, out)
		}
	}
	if p.Result != "success" || len(p.Components) != 3 {
		t.Fatalf("process: %s", out)
	}

	var list struct {
		Manifests []struct {
			ID         []string   `json:"manifest_component_id"`
			Root       bool       `json:"root"`
			Dependents [][]string `json:"dependents"`
		} `json:"manifests"`
		Components []any `json:"components"`
	}
	if err := json.Unmarshal([]byte(suitMust(t, "suit", "list", "--store", store)), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Manifests) != 3 || len(list.Components) != 3 {
		t.Fatalf("list: %+v", list)
	}
	for _, m := range list.Manifests {
		isTA := strings.Join(m.ID, ",") == strings.Join(taManifest, ",")
		if m.Root == isTA || (isTA && len(m.Dependents) != 1) {
			t.Errorf("manifest %v: root %v, dependents %v", m.ID, m.Root, m.Dependents)
		}
	}
	// The TA was installed only as a dependency: it cannot be uninstalled
	// on its own.
	if _, errs, code := suitRun(t, "suit", "uninstall", "--store", store, "--manifest-id", "TEEP-Device", "--manifest-id", "SecureFS",
		"--manifest-id", "hex:8d82573a926d4754935332dc29997f74", "--manifest-id", "suit"); code != 1 || !strings.Contains(errs, "only as a dependency") {
		t.Errorf("uninstalling a dependency on its own: exit %d %q", code, errs)
	}
	out = suitMust(t, "suit", "uninstall", "--store", store,
		"--manifest-id", "TEEP-Device", "--manifest-id", "SecureFS", "--manifest-id", "config.json", "--manifest-id", "suit",
		"--next", "--manifest-id", "other", "--manifest-id", "suit")
	p = suitDecodeProcess(t, out)
	removed := 0
	for _, c := range p.Components {
		if c.Action == "removed" {
			removed++
		}
	}
	if p.Result != "success" || removed != 3 {
		t.Fatalf("uninstall: %s", out)
	}
	if err := json.Unmarshal([]byte(suitMust(t, "suit", "list", "--store", store)), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Manifests) != 0 || len(list.Components) != 0 {
		t.Fatalf("store not empty: %+v", list)
	}
}

func TestSuitComponentIDFlags(t *testing.T) {
	want := suit.ComponentID{[]byte("TEEP-Device"), []byte("SecureFS"), {0x8d, 0x82}, []byte("ta")}
	for _, vals := range [][]string{
		{"TEEP-Device", "SecureFS", "hex:8d82", "ta"},
		{"TEEP-Device/SecureFS/hex:8d82/ta"},
		{"TEEP-Device/SecureFS", "hex:8D82/ta"},
	} {
		got, err := suitComponentID(vals)
		if err != nil || !got.Equal(want) {
			t.Errorf("suitComponentID(%q) = %v, %v", vals, got, err)
		}
	}
	for _, bad := range [][]string{{"a b"}, {"hex:zz"}, {"a//b"}, {""}, {strings.Repeat("a/", suit.MaxComponentIDSegments-1) + "a", "b"}} {
		if _, err := suitComponentID(bad); err == nil {
			t.Errorf("suitComponentID(%.40q) accepted", bad)
		}
	}
}
