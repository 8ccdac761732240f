package suit

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/teep-go/teep/cborwire"
)

// ManifestSpec describes a manifest for the builder (draft-ietf-suit-manifest
// §7 templates, draft-ietf-suit-trust-domains §9 dependency template). The
// generated layout:
//
//	shared:    per component: [set-index i,] override{vendor?, class?, digest, size},
//	           vendor-identifier?, class-identifier?
//	dependency-resolution (with dependencies):
//	           per dependency: set-index d, override{digest, size, uri}, fetch,
//	           dependency-integrity, process-dependency (so the dependency
//	           resolves its own dependencies)
//	install:   per dependency: set-index d, process-dependency;
//	           per component: [set-index i,] override{uri | content, encryption-info?},
//	           fetch | write, image-match
//	validate:  per dependency: set-index d, process-dependency; per component:
//	           [set-index i,] image-match (unless NoValidate)
//	invoke:    per component with Invoke: [set-index i,]
//	           override{invoke-args}?, invoke (no section when none has it)
//	uninstall: per dependency: set-index d, process-dependency; per component:
//	           [set-index i,] unlink (when a manifest component id is set)
//
// Without VendorID and ClassID the manifest carries no identity conditions.
type ManifestSpec struct {
	ManifestComponentID ComponentID
	SequenceNumber      uint64
	ReferenceURI        string
	VendorID            []byte // 16-byte UUID; nil: no vendor-identifier condition
	ClassID             []byte // 16-byte UUID; nil: no class-identifier condition
	Components          []ComponentSpec
	Dependencies        []DependencySpec
	NoValidate          bool      // omit the validate section
	NoUninstall         bool      // omit the uninstall section
	Sever               []Section // members moved out of the manifest (text is always severed)
	Description         string    // suit-text manifest-description ("en"), optional
	DigestAlg           int64     // payload and manifest digests; default SHA-256
	Tagged              bool      // emit SUIT_Envelope_Tagged (107)
	Limits              Limits
}

// ComponentSpec is one component the manifest installs. Exactly one of URI,
// Integrated and Inline says how the device gets the payload.
type ComponentSpec struct {
	ID ComponentID
	// Payload is the plaintext. When nil, Digest and Size describe a payload
	// the builder never sees (e.g. a large file hashed by the caller).
	Payload []byte
	Digest  *Digest
	Size    uint64

	URI           string // the device fetches the payload from here
	Integrated    bool   // the payload travels in the envelope
	IntegratedKey string // envelope key, "#payload" (or "#payload-i") by default
	Inline        bool   // the payload is written from the manifest itself (small data)

	// Encrypt encrypts Payload (draft-ietf-suit-firmware-encryption); the
	// image digest stays over the plaintext.
	Encrypt *EncryptOptions

	// Invoke lists the component in the suit-invoke section: the device
	// runs it (suit-directive-invoke) in the Invocation procedure, with
	// InvokeArgs, when set, as suit-parameter-invoke-args.
	Invoke     bool
	InvokeArgs []byte
}

// DependencySpec names a manifest this one depends on.
type DependencySpec struct {
	Envelope      []byte // the dependency's envelope; its manifest digest is pinned
	URI           string // where the device fetches it; empty: integrated
	IntegratedKey string // envelope key when integrated, "#dependency[-i]" by default
}

// DetachedPayload is a payload the caller must publish at its URI because
// the builder encrypted it.
type DetachedPayload struct {
	Component ComponentID
	URI       string
	Data      []byte
}

// Build builds an unsigned envelope (the authentication wrapper holds only
// the digest); call Sign or SignMAC on the result. It fails if a component
// needs a detached payload published (an encrypted payload fetched by URI):
// use BuildDetached for that.
func Build(spec ManifestSpec) (*Envelope, error) {
	e, det, err := BuildDetached(spec)
	if err != nil {
		return nil, err
	}
	if len(det) != 0 {
		return nil, errors.New("suit: build: encrypted payloads fetched by URI must be published; use BuildDetached")
	}
	return e, nil
}

// BuildDetached is Build that also returns the encrypted payloads the caller
// must publish at their URIs.
func BuildDetached(spec ManifestSpec) (*Envelope, []DetachedPayload, error) {
	b := &builder{spec: spec, alg: spec.DigestAlg}
	if b.alg == 0 {
		b.alg = AlgSHA256
	}
	if err := b.check(); err != nil {
		return nil, nil, err
	}
	if err := b.prepare(); err != nil {
		return nil, nil, err
	}
	return b.assemble()
}

type builder struct {
	spec       ManifestSpec
	alg        int64
	comps      []builtComponent
	deps       []builtDependency
	integrated []Integrated
	detached   []DetachedPayload
}

type builtComponent struct {
	spec    ComponentSpec
	digest  Digest
	size    uint64
	uri     string
	content []byte // Inline
	encInfo []byte // encoded SUIT_Encryption_Info, when encrypted
}

type builtDependency struct {
	index  uint64
	id     ComponentID
	digest Digest
	size   uint64
	uri    string
}

func (b *builder) check() error {
	s := &b.spec
	if len(s.Components) == 0 && len(s.Dependencies) == 0 {
		return errors.New("suit: build: no components and no dependencies")
	}
	if s.VendorID != nil && len(s.VendorID) != 16 {
		return fmt.Errorf("suit: build: vendor id must be a 16-byte UUID, got %d bytes", len(s.VendorID))
	}
	if s.ClassID != nil && len(s.ClassID) != 16 {
		return fmt.Errorf("suit: build: class id must be a 16-byte UUID, got %d bytes", len(s.ClassID))
	}
	if s.ClassID != nil && s.VendorID == nil {
		return errors.New("suit: build: a class id needs a vendor id (class ids are scoped by vendor)")
	}
	if digestLen(b.alg) == 0 {
		return errorf(ErrAlgUnsupported, "digest algorithm %s", DigestAlgName(b.alg))
	}
	seen := map[string]bool{}
	for i, c := range s.Components {
		if len(c.ID) == 0 {
			return fmt.Errorf("suit: build: component %d has an empty id", i)
		}
		if seen[c.ID.Key()] {
			return fmt.Errorf("suit: build: component id %s listed twice", c.ID)
		}
		seen[c.ID.Key()] = true
		modes := 0
		for _, on := range []bool{c.URI != "", c.Integrated, c.Inline} {
			if on {
				modes++
			}
		}
		if modes != 1 {
			return fmt.Errorf("suit: build: component %s: set exactly one of URI, Integrated and Inline", c.ID)
		}
		if c.Payload == nil {
			if c.Integrated || c.Inline || c.Encrypt != nil {
				return fmt.Errorf("suit: build: component %s: integrated, inline and encrypted payloads need Payload", c.ID)
			}
			if c.Digest == nil {
				return fmt.Errorf("suit: build: component %s: give Payload, or Digest and Size", c.ID)
			}
		}
	}
	return nil
}

func (b *builder) prepare() error {
	s := &b.spec
	keys := map[string]bool{}
	for i, c := range s.Components {
		bc := builtComponent{spec: c, uri: c.URI}
		if c.Payload != nil {
			d, err := DigestOf(b.alg, c.Payload)
			if err != nil {
				return err
			}
			if c.Digest != nil && !c.Digest.Equal(d) {
				return fmt.Errorf("suit: build: component %s: Digest does not match Payload", c.ID)
			}
			bc.digest, bc.size = d, uint64(len(c.Payload))
		} else {
			bc.digest, bc.size = *c.Digest, c.Size
		}
		data := c.Payload
		if c.Encrypt != nil {
			ct, info, err := Encrypt(c.Payload, *c.Encrypt)
			if err != nil {
				return fmt.Errorf("suit: build: component %s: %w", c.ID, err)
			}
			data, bc.encInfo = ct, info
		}
		switch {
		case c.Inline:
			bc.content = data
		case c.Integrated:
			key := c.IntegratedKey
			if key == "" {
				key = "#payload"
				if len(s.Components) > 1 {
					key += "-" + strconv.Itoa(i)
				}
			}
			if keys[key] {
				return fmt.Errorf("suit: build: integrated key %q used twice", key)
			}
			keys[key] = true
			bc.uri = key
			b.integrated = append(b.integrated, Integrated{Key: key, Data: data})
		case c.Encrypt != nil:
			b.detached = append(b.detached, DetachedPayload{Component: c.ID, URI: c.URI, Data: data})
		}
		b.comps = append(b.comps, bc)
	}
	for i, d := range s.Dependencies {
		de, err := ParseEnvelope(d.Envelope, ParseOptions{Limits: s.Limits})
		if err != nil {
			return fmt.Errorf("suit: build: dependency %d: %w", i, err)
		}
		id := de.Manifest().ComponentID
		if id == nil {
			return fmt.Errorf("suit: build: dependency %d has no manifest-component-id", i)
		}
		bd := builtDependency{index: uint64(len(s.Components) + i), id: id, digest: de.Digest(), size: uint64(len(d.Envelope)), uri: d.URI}
		if d.URI == "" {
			key := d.IntegratedKey
			if key == "" {
				key = "#dependency"
				if len(s.Dependencies) > 1 {
					key += "-" + strconv.Itoa(i)
				}
			}
			if keys[key] {
				return fmt.Errorf("suit: build: integrated key %q used twice", key)
			}
			keys[key] = true
			bd.uri = key
			b.integrated = append(b.integrated, Integrated{Key: key, Data: d.Envelope})
		}
		b.deps = append(b.deps, bd)
	}
	return nil
}

// seqBuilder accumulates a command sequence.
type seqBuilder struct {
	b []byte
	n int
}

func (q *seqBuilder) cmd(code int64, arg []byte) {
	q.b = append(cborwire.AppendInt(q.b, code), arg...)
	q.n++
}

func (q *seqBuilder) policy(code int64, p uint64) { q.cmd(code, cborwire.AppendUint(nil, p)) }

func (q *seqBuilder) params(code int64, entries []cborwire.MapEntry) {
	q.cmd(code, cborwire.AppendMap(nil, entries))
}

func (q *seqBuilder) bytes() []byte {
	if q.n == 0 {
		return nil
	}
	return append(cborwire.AppendArrayHead(nil, 2*q.n), q.b...)
}

func (b *builder) slots() int { return len(b.comps) + len(b.deps) }

// index emits set-component-index unless the manifest has a single slot.
func (b *builder) index(q *seqBuilder, i uint64) {
	if b.slots() > 1 {
		q.cmd(DirSetComponentIndex, cborwire.AppendUint(nil, i))
	}
}

func (b *builder) assemble() (*Envelope, []DetachedPayload, error) {
	s := &b.spec
	// common
	var common []cborwire.MapEntry
	if len(b.comps) > 0 {
		cl := cborwire.AppendArrayHead(nil, len(b.comps))
		for _, c := range b.comps {
			cl = c.spec.ID.appendTo(cl)
		}
		common = append(common, cborwire.MapEntry{Key: intKey(keyComponents), Val: cl})
	}
	if len(b.deps) > 0 {
		var deps []cborwire.MapEntry
		for _, d := range b.deps {
			meta := cborwire.AppendMap(nil, []cborwire.MapEntry{{Key: intKey(keyDepPrefix), Val: d.id.appendTo(nil)}})
			deps = append(deps, cborwire.MapEntry{Key: cborwire.AppendUint(nil, d.index), Val: meta})
		}
		common = append(common, cborwire.MapEntry{Key: intKey(keyDependencies), Val: cborwire.AppendMap(nil, deps)})
	}
	var shared seqBuilder
	for i, c := range b.comps {
		b.index(&shared, uint64(i))
		var p []cborwire.MapEntry
		if s.VendorID != nil {
			p = append(p, cborwire.MapEntry{Key: intKey(ParamVendorID), Val: cborwire.AppendBytes(nil, s.VendorID)})
		}
		if s.ClassID != nil {
			p = append(p, cborwire.MapEntry{Key: intKey(ParamClassID), Val: cborwire.AppendBytes(nil, s.ClassID)})
		}
		p = append(p, cborwire.MapEntry{Key: intKey(ParamImageDigest), Val: cborwire.AppendBytes(nil, c.digest.Marshal())})
		p = append(p, cborwire.MapEntry{Key: intKey(ParamImageSize), Val: cborwire.AppendUint(nil, c.size)})
		shared.params(DirOverrideParameters, p)
		if s.VendorID != nil {
			shared.policy(CondVendorID, ReportAll)
		}
		if s.ClassID != nil {
			shared.policy(CondClassID, ReportAll)
		}
	}
	if sh := shared.bytes(); sh != nil {
		common = append(common, cborwire.MapEntry{Key: intKey(keySharedSequence), Val: cborwire.AppendBytes(nil, sh)})
	}

	// dependency-resolution
	var depres seqBuilder
	for _, d := range b.deps {
		depres.cmd(DirSetComponentIndex, cborwire.AppendUint(nil, d.index))
		depres.params(DirOverrideParameters, []cborwire.MapEntry{
			{Key: intKey(ParamImageDigest), Val: cborwire.AppendBytes(nil, d.digest.Marshal())},
			{Key: intKey(ParamImageSize), Val: cborwire.AppendUint(nil, d.size)},
			{Key: intKey(ParamURI), Val: cborwire.AppendText(nil, d.uri)},
		})
		depres.policy(DirFetch, RecordOnFailure)
		depres.policy(CondDependencyIntegrity, ReportAll)
		// A dependency's own sequences run only when its dependent
		// processes it (draft-ietf-suit-trust-domains §6.4).
		depres.policy(DirProcessDependency, 0)
	}
	// install
	var install seqBuilder
	for _, d := range b.deps {
		install.cmd(DirSetComponentIndex, cborwire.AppendUint(nil, d.index))
		install.policy(DirProcessDependency, 0)
	}
	for i, c := range b.comps {
		b.index(&install, uint64(i))
		var p []cborwire.MapEntry
		if c.spec.Inline {
			p = append(p, cborwire.MapEntry{Key: intKey(ParamContent), Val: cborwire.AppendBytes(nil, c.content)})
		} else {
			p = append(p, cborwire.MapEntry{Key: intKey(ParamURI), Val: cborwire.AppendText(nil, c.uri)})
		}
		if c.encInfo != nil {
			p = append(p, cborwire.MapEntry{Key: intKey(ParamEncryptionInfo), Val: cborwire.AppendBytes(nil, c.encInfo)})
		}
		install.params(DirOverrideParameters, p)
		if c.spec.Inline {
			install.policy(DirWrite, ReportAll)
		} else {
			install.policy(DirFetch, RecordOnFailure)
		}
		install.policy(CondImageMatch, ReportAll)
	}
	// validate
	var validate seqBuilder
	if !s.NoValidate {
		for _, d := range b.deps {
			validate.cmd(DirSetComponentIndex, cborwire.AppendUint(nil, d.index))
			validate.policy(DirProcessDependency, 0)
		}
		for i := range b.comps {
			b.index(&validate, uint64(i))
			validate.policy(CondImageMatch, ReportAll)
		}
	}
	// invoke
	var invoke seqBuilder
	for i, c := range b.comps {
		if !c.spec.Invoke {
			continue
		}
		b.index(&invoke, uint64(i))
		if c.spec.InvokeArgs != nil {
			invoke.params(DirOverrideParameters, []cborwire.MapEntry{{Key: intKey(ParamInvokeArgs), Val: cborwire.AppendBytes(nil, c.spec.InvokeArgs)}})
		}
		invoke.policy(DirInvoke, ReportAll)
	}
	// uninstall
	var uninstall seqBuilder
	if !s.NoUninstall && s.ManifestComponentID != nil {
		for _, d := range b.deps {
			uninstall.cmd(DirSetComponentIndex, cborwire.AppendUint(nil, d.index))
			uninstall.policy(DirProcessDependency, 0)
		}
		for i := range b.comps {
			b.index(&uninstall, uint64(i))
			uninstall.policy(DirUnlink, ReportAll)
		}
	}
	var text []byte
	if s.Description != "" {
		text = cborwire.AppendMap(nil, []cborwire.MapEntry{{Key: cborwire.AppendText(nil, "en"), Val: cborwire.AppendMap(nil, []cborwire.MapEntry{{Key: intKey(1), Val: cborwire.AppendText(nil, s.Description)}})}})
	}

	sever := map[Section]bool{SectionText: true}
	for _, sec := range s.Sever {
		if !sec.Severable() {
			return nil, nil, fmt.Errorf("suit: build: %s cannot be severed", sec)
		}
		sever[sec] = true
	}
	severed := map[Section][]byte{}
	manifest := []cborwire.MapEntry{
		{Key: intKey(keyVersion), Val: cborwire.AppendUint(nil, 1)},
		{Key: intKey(keySequenceNum), Val: cborwire.AppendUint(nil, s.SequenceNumber)},
		{Key: intKey(keyCommon), Val: cborwire.AppendBytes(nil, cborwire.AppendMap(nil, common))},
	}
	if s.ReferenceURI != "" {
		manifest = append(manifest, cborwire.MapEntry{Key: intKey(keyRefURI), Val: cborwire.AppendText(nil, s.ReferenceURI)})
	}
	if s.ManifestComponentID != nil {
		manifest = append(manifest, cborwire.MapEntry{Key: intKey(keyManifestID), Val: s.ManifestComponentID.appendTo(nil)})
	}
	add := func(sec Section, content []byte) error {
		if content == nil {
			return nil
		}
		item := cborwire.AppendBytes(nil, content)
		if sever[sec] {
			d, err := DigestOf(b.alg, item)
			if err != nil {
				return err
			}
			severed[sec] = item
			item = d.Marshal()
		}
		manifest = append(manifest, cborwire.MapEntry{Key: intKey(int64(sec)), Val: item})
		return nil
	}
	for _, part := range []struct {
		sec     Section
		content []byte
	}{
		{SectionValidate, validate.bytes()},
		{SectionInvoke, invoke.bytes()},
		{SectionDependencyResolution, depres.bytes()},
		{SectionInstall, install.bytes()},
		{SectionText, text},
		{SectionUninstall, uninstall.bytes()},
	} {
		if err := add(part.sec, part.content); err != nil {
			return nil, nil, err
		}
	}
	e, err := unsignedEnvelope(cborwire.AppendMap(nil, manifest), b.alg, severed, b.integrated, s.Tagged, s.Limits)
	if err != nil {
		return nil, nil, fmt.Errorf("suit: build: the built envelope does not parse: %w", err)
	}
	return e, b.detached, nil
}

// NewEnvelope wraps an encoded SUIT_Manifest (for manifests the builder's
// layout does not cover) in an unsigned envelope with its digest; sign it
// with Sign or SignMAC. integrated entries are added under their keys.
func NewEnvelope(manifest []byte, integrated []Integrated, tagged bool) (*Envelope, error) {
	return unsignedEnvelope(manifest, AlgSHA256, nil, integrated, tagged, Limits{})
}

// unsignedEnvelope wraps encoded SUIT_Manifest content in an envelope whose
// authentication wrapper holds only the manifest digest, with the severed
// members (encoded bstr items) and integrated entries beside it, and parses
// the result.
func unsignedEnvelope(manifest []byte, alg int64, severed map[Section][]byte, integrated []Integrated, tagged bool, lim Limits) (*Envelope, error) {
	item := cborwire.AppendBytes(nil, manifest)
	d, err := DigestOf(alg, item)
	if err != nil {
		return nil, err
	}
	auth := cborwire.AppendBytes(cborwire.AppendArrayHead(nil, 1), d.Marshal())
	entries := []cborwire.MapEntry{{Key: intKey(keyAuth), Val: cborwire.AppendBytes(nil, auth)}, {Key: intKey(keyManifest), Val: item}}
	for sec, member := range severed {
		entries = append(entries, cborwire.MapEntry{Key: intKey(int64(sec)), Val: member})
	}
	for _, p := range integrated {
		entries = append(entries, cborwire.MapEntry{Key: cborwire.AppendText(nil, p.Key), Val: cborwire.AppendBytes(nil, p.Data)})
	}
	var out []byte
	if tagged {
		out = cborwire.AppendTag(out, TagEnvelope)
	}
	return ParseEnvelope(cborwire.AppendMap(out, entries), ParseOptions{Limits: lim})
}
