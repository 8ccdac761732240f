package tam

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

func pid(t *testing.T, name string) suit.ComponentID {
	t.Helper()
	id := suit.NewComponentID(name)
	if err := checkID(id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestMakePlan(t *testing.T) {
	a, b, lib, other, failedApp := pid(t, "a"), pid(t, "b"), pid(t, "lib"), pid(t, "other"), pid(t, "failed-app")
	dev := &Device{KID: []byte{0xab, 0xcd}, Labels: []string{"beta"}, HWModel: []byte("m1")}
	cat := newCatalog(map[cidKey][]ComponentVersion{
		keyOf(a):   {{ComponentID: a, Sequence: 1}, {ComponentID: a, Sequence: 3, Dependencies: []suit.ComponentID{lib}}},
		keyOf(b):   {{ComponentID: b, Sequence: 7}},
		keyOf(lib): {{ComponentID: lib, Sequence: 2}},
	})
	req := func(id suit.ComponentID, s Scope) Policy {
		return Policy{Component: id, Mode: Required, Scope: s.kind, Value: s.value}
	}
	opt := func(id suit.ComponentID, s Scope) Policy {
		return Policy{Component: id, Mode: Optional, Scope: s.kind, Value: s.value}
	}
	inst := func(id suit.ComponentID, seq uint64, managed, requested bool) Installed {
		return Installed{ComponentID: id, Sequence: seq, Managed: managed, Requested: requested}
	}
	type want struct {
		install   []string // "name@seq" in order
		remove    []cidKey
		note      string
		exhausted bool
	}
	step := func(s planStep) string { return fmt.Sprintf("%s@%d", s.id.Name(), s.seq) }
	cases := []struct {
		name      string
		policies  []Policy
		installed []Installed
		requested []requestedTC
		unneeded  []cidKey
		failures  map[failKey]int
		want      want
	}{
		{name: "nothing wanted, nothing installed"},
		{name: "required on all: dependency first", policies: []Policy{req(a, all)}, want: want{install: []string{"lib@2", "a@3"}}},
		{name: "up to date", policies: []Policy{req(a, all)}, installed: []Installed{inst(a, 3, true, false), inst(lib, 2, true, false)}},
		{name: "outdated", policies: []Policy{req(a, all)}, installed: []Installed{inst(a, 1, true, false), inst(lib, 2, true, false)},
			want: want{install: []string{"a@3"}}},
		{name: "newer than latest stays", policies: []Policy{req(b, all)}, installed: []Installed{inst(b, 9, true, false)}},
		{name: "label matches", policies: []Policy{req(b, Scope{ScopeLabel, "beta"})}, want: want{install: []string{"b@7"}}},
		{name: "label does not match", policies: []Policy{req(b, Scope{ScopeLabel, "prod"})}},
		{name: "hwmodel as text", policies: []Policy{req(b, Scope{ScopeHWModel, "m1"})}, want: want{install: []string{"b@7"}}},
		{name: "hwmodel as hex", policies: []Policy{req(b, Scope{ScopeHWModel, hex.EncodeToString([]byte("m1"))})}, want: want{install: []string{"b@7"}}},
		{name: "device scope", policies: []Policy{req(b, Scope{ScopeDevice, "ABCD"})}, want: want{install: []string{"b@7"}}},
		{name: "other device", policies: []Policy{req(b, Scope{ScopeDevice, "abce"})}},
		{name: "policy removed: managed component removed, unmanaged kept",
			installed: []Installed{inst(b, 7, true, false), inst(other, 1, false, false)}, want: want{remove: []cidKey{keyOf(b)}}},
		{name: "optional not requested", policies: []Policy{opt(b, all)}},
		{name: "optional requested", policies: []Policy{opt(b, all)}, requested: []requestedTC{{id: keyOf(b)}}, want: want{install: []string{"b@7"}}},
		{name: "requested but not offered", requested: []requestedTC{{id: keyOf(b)}}, want: want{note: "no policy offers"}},
		{name: "a note naming a component called failed-app is no failure", requested: []requestedTC{{id: keyOf(failedApp)}}, want: want{note: "failed-app, which no policy offers"}},
		{name: "requested minimum too high", policies: []Policy{opt(b, all)}, requested: []requestedTC{{id: keyOf(b), min: 8}}, want: want{note: "sequence 8 or later"}},
		{name: "requested earlier stays while offered", policies: []Policy{opt(b, all)}, installed: []Installed{inst(b, 7, true, true)}},
		{name: "requested earlier goes when no longer offered", installed: []Installed{inst(b, 7, true, true)}, want: want{remove: []cidKey{keyOf(b)}}},
		{name: "unneeded and optional: removed", policies: []Policy{opt(b, all)}, installed: []Installed{inst(b, 7, true, true)},
			unneeded: []cidKey{keyOf(b)}, want: want{remove: []cidKey{keyOf(b)}}},
		{name: "unneeded but required: kept", policies: []Policy{req(b, all)}, installed: []Installed{inst(b, 7, true, false)},
			unneeded: []cidKey{keyOf(b)}, want: want{note: "kept: a policy requires it"}},
		{name: "unneeded, installed elsewhere: confirmed", unneeded: []cidKey{keyOf(other)}, want: want{remove: []cidKey{keyOf(other)}}},
		{name: "dependency of a wanted component is kept", policies: []Policy{req(a, all)},
			installed: []Installed{inst(a, 3, true, false), inst(lib, 2, true, false)}, unneeded: []cidKey{keyOf(lib)}},
		{name: "failed too often", policies: []Policy{req(b, all)}, failures: map[failKey]int{{keyOf(b), 7}: 3},
			want: want{note: "failed 3 times", exhausted: true}},
		{name: "failed less often", policies: []Policy{req(b, all)}, failures: map[failKey]int{{keyOf(b), 7}: 2}, want: want{install: []string{"b@7"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := planInput{dev: dev, installed: map[cidKey]Installed{}, catalog: cat, policies: c.policies, requested: c.requested,
				unneeded: c.unneeded, failures: c.failures, maxAttempts: 3}
			for _, i := range c.installed {
				in.installed[keyOf(i.ComponentID)] = i
			}
			p := makePlan(in)
			var got []string
			for _, s := range p.install {
				got = append(got, step(s))
			}
			if !reflect.DeepEqual(got, c.want.install) {
				t.Errorf("install %v, want %v", got, c.want.install)
			}
			if !reflect.DeepEqual(p.remove, c.want.remove) {
				t.Errorf("remove %v, want %v", p.remove, c.want.remove)
			}
			notes := strings.Join(p.notes, "; ")
			if (c.want.note == "") != (notes == "") || !strings.Contains(notes, c.want.note) {
				t.Errorf("notes %q, want %q", notes, c.want.note)
			}
			if p.exhausted != c.want.exhausted {
				t.Errorf("exhausted %v, want %v", p.exhausted, c.want.exhausted)
			}
		})
	}
}

// Scope is a test shorthand for a policy scope.
type Scope struct {
	kind  ScopeKind
	value string
}

var all = Scope{ScopeAll, ""}

func TestPlanPersonalization(t *testing.T) {
	ta := pid(t, "ta")
	dev := &Device{KID: []byte{1}}
	cat := newCatalog(map[cidKey][]ComponentVersion{keyOf(ta): {{ComponentID: ta, Sequence: 4}}})
	pz := Personalization{Name: "cfg", ComponentID: pid(t, "cfg-suit"), Sequence: 2, DependsOn: []suit.ComponentID{ta}}
	p := makePlan(planInput{dev: dev, installed: map[cidKey]Installed{}, catalog: cat, personal: []Personalization{pz}, maxAttempts: 3})
	if len(p.install) != 2 || p.install[0].id != keyOf(ta) || p.install[1].personal == nil {
		t.Fatalf("personalization with its dependency: %+v", p.install)
	}
	p = makePlan(planInput{dev: dev, catalog: cat, personal: []Personalization{pz}, maxAttempts: 3,
		installed: map[cidKey]Installed{keyOf(pz.ComponentID): {ComponentID: pz.ComponentID, Sequence: 2, Managed: true}, keyOf(ta): {ComponentID: ta, Sequence: 4}}})
	if !p.empty() {
		t.Fatalf("installed personalization sent again: %+v", p)
	}
	p = makePlan(planInput{dev: dev, catalog: cat, personal: []Personalization{pz}, maxAttempts: 3,
		installed: map[cidKey]Installed{keyOf(ta): {ComponentID: ta, Sequence: 4}}, failures: map[failKey]int{{keyOf(pz.ComponentID), 2}: 3}})
	if !p.empty() || !p.exhausted {
		t.Fatalf("personalization that failed 3 times: %+v", p)
	}
}

func TestComponentID(t *testing.T) {
	id := suit.ComponentID{[]byte("TEEP-Device"), {0x8d, 0x82}, []byte("ta")}
	if IDHex(id) != "834b544545502d446576696365428d824274"+"61" || IDName(id) != "TEEP-Device/hex:8d82/ta" {
		t.Fatalf("hex %s, name %q", IDHex(id), IDName(id))
	}
	for _, ref := range []string{strings.ToUpper(IDHex(id)), IDHex(id), IDName(id), `["544545502d446576696365","8d82","7461"]`, "544545502d446576696365,8d82,7461"} {
		back, err := ParseComponentID(ref)
		if err != nil || !back.Equal(id) {
			t.Fatalf("ParseComponentID(%q): %v %v", ref, back, err)
		}
	}
	if k := keyOf(id); !k.id().Equal(id) || k.Name() != IDName(id) {
		t.Fatalf("key round trip: %v %q", k.id(), k.Name())
	}
	// Hex that is not the canonical encoding of a usable id is a text segment.
	for _, ref := range []string{"80", "a0", "9f41aaff", "8158010000", "zz"} {
		got, err := ParseComponentID(ref)
		if err != nil || !got.Equal(suit.NewComponentID(ref)) {
			t.Errorf("ParseComponentID(%q) = %v, %v; want the one text segment", ref, got, err)
		}
	}
	for _, bad := range []string{"", "a b", "a//b", "hex:zz", "[]", "it's"} {
		if _, err := ParseComponentID(bad); err == nil {
			t.Errorf("ParseComponentID(%q) accepted", bad)
		}
	}
	if err := checkID(nil); err == nil {
		t.Error("empty component id accepted")
	}
	if err := checkID(make(suit.ComponentID, suit.MaxComponentIDSegments+1)); err == nil {
		t.Error("too many segments accepted")
	}
}

// An id the TEEP decoder accepts in a message is one the TAM can store: the
// two apply the same limits (package suit's).
func TestComponentIDLimitsAgree(t *testing.T) {
	seg := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	big := suit.ComponentID{seg(suit.MaxComponentIDSegmentSize, 'a'), seg(suit.MaxComponentIDSegmentSize, 'b'), seg(suit.MaxComponentIDSegmentSize, 'c')}
	for big.Check() == nil {
		big = append(big, []byte("x"))
	}
	cases := []suit.ComponentID{
		suit.NewComponentID("TEEP-Device", "SecureFS", "app", "ta"),
		make(suit.ComponentID, suit.MaxComponentIDSegments),
		make(suit.ComponentID, suit.MaxComponentIDSegments+1),
		{seg(suit.MaxComponentIDSegmentSize, 1)},
		{seg(suit.MaxComponentIDSegmentSize+1, 1)},
		big[:len(big)-1],
		big,
	}
	for i, id := range cases {
		msg, err := teep.Encode(&teep.QueryResponse{RequestedTCList: []teep.RequestedTC{{ComponentID: id}}}, teep.EncodeOptions{})
		if err != nil {
			t.Fatalf("case %d: encode: %v", i, err)
		}
		m, decErr := teep.Decode(msg, teep.DecodeOptions{})
		storeErr := checkID(id)
		if (decErr == nil) != (storeErr == nil) {
			t.Errorf("case %d (%d segments): TEEP decoder %v, TAM %v", i, len(id), decErr, storeErr)
		}
		if decErr == nil {
			got := m.(*teep.QueryResponse).RequestedTCList[0].ComponentID
			if !keyOf(got).id().Equal(id) {
				t.Errorf("case %d: decoded id keyed as %v", i, keyOf(got).id())
			}
			// The name the admin API shows reads back as the same id.
			if back, err := ParseComponentID(IDName(got)); err != nil || !back.Equal(id) {
				t.Errorf("case %d: name %.40q reads back as %v, %v", i, IDName(got), back, err)
			}
		}
	}
}

func FuzzParseComponentID(f *testing.F) {
	for _, s := range []string{"834b544545502d4465766963654853656375726546534473756974", "8140", "80", "9f41aaff", "TEEP-Device/hex:8d82", `["00"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseComponentID(s)
		if err != nil {
			return
		}
		if err := checkID(id); err != nil {
			t.Fatalf("%q accepted beyond the limits: %v", s, err)
		}
		if back, err := ParseComponentID(IDHex(id)); err != nil || !back.Equal(id) {
			t.Fatalf("hex %s of %q parses to %v, %v", IDHex(id), s, back, err)
		}
		if back, err := ParseComponentID(IDName(id)); err != nil || !back.Equal(id) {
			t.Fatalf("name %q of %q parses to %v, %v", IDName(id), s, back, err)
		}
	})
}

func TestComponentIDNameHexLike(t *testing.T) {
	// "8140" is also the hex of the encoding of [h'']: the name must not be
	// read as that.
	id := suit.NewComponentID("8140")
	if IDName(id) != "hex:38313430" {
		t.Fatalf("Name = %q", IDName(id))
	}
	if back, err := ParseComponentID(IDName(id)); err != nil || !back.Equal(id) {
		t.Fatalf("ParseComponentID(Name) = %v, %v", back, err)
	}
}

// TestPlanLabelOwnership: a label-scoped policy matches only the labels its
// component's owner set on the device, never another tenant's label of the
// same text.
func TestPlanLabelOwnership(t *testing.T) {
	mine, theirs := pid(t, "mine"), pid(t, "theirs")
	cat := newCatalog(map[cidKey][]ComponentVersion{
		keyOf(mine):   {{ComponentID: mine, Sequence: 1}},
		keyOf(theirs): {{ComponentID: theirs, Sequence: 1}},
	})
	pols := []Policy{
		{Component: mine, Mode: Required, Scope: ScopeLabel, Value: "eu"},
		{Component: theirs, Mode: Required, Scope: ScopeLabel, Value: "eu"},
	}
	owners := map[string]string{IDHex(theirs): "acme"} // mine: the default tenant
	for _, c := range []struct {
		name  string
		setBy string
		want  []cidKey
	}{
		{"default tenant's label", DefaultTenant, []cidKey{keyOf(mine)}},
		{"acme's label", "acme", []cidKey{keyOf(theirs)}},
		{"another tenant's label", "beta", nil},
	} {
		dev := &Device{KID: []byte{1}}
		dev.SetLabelsOf(c.setBy, []string{"eu"})
		p := makePlan(planInput{dev: dev, installed: map[cidKey]Installed{}, catalog: cat, policies: pols, owners: owners, maxAttempts: 3})
		var got []cidKey
		for _, s := range p.install {
			got = append(got, s.id)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: installs %v, want %v", c.name, got, c.want)
		}
	}
}
