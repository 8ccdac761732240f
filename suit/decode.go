package suit

import (
	"fmt"

	"github.com/teep-go/teep/cborwire"
)

// ParseOptions adjust ParseEnvelope. The zero value uses DefaultLimits.
type ParseOptions struct {
	Limits Limits
	// KeepUnknownUnsafe records envelope and manifest members this package
	// does not know (Envelope.Unknown, Manifest.Unknown) instead of refusing
	// them, so an inspector can show the rest. An unknown member may change
	// what the manifest means: never process or trust an envelope parsed
	// this way.
	KeepUnknownUnsafe bool
}

// UnknownMember is an envelope or manifest member kept by
// ParseOptions.KeepUnknownUnsafe: its key and the size of its encoded value.
// Text-keyed envelope members are integrated payloads, never unknown.
type UnknownMember struct {
	Key  int64
	Size int
}

// Integrated is an integrated payload or integrated dependency: an envelope
// entry with a text key (draft-ietf-suit-manifest §7.5,
// draft-ietf-suit-trust-domains §4). It is not covered by the signature;
// whoever uses it checks it against an image digest.
type Integrated struct {
	Key  string
	Data []byte
}

// Envelope is a parsed SUIT_Envelope. It keeps the raw bytes of every
// element, because every digest is over raw bytes (never re-encoded).
type Envelope struct {
	Tagged bool // carried CBOR tag 107

	raw          []byte
	authItem     []byte // encoded bstr at key 2
	digestRaw    []byte // encoded SUIT_Digest (the signed payload)
	digest       Digest
	blocks       []AuthBlock
	manifestItem []byte // encoded bstr at key 3: the digest input
	manifest     *Manifest
	severed      map[Section][]byte // encoded bstr items of severed members
	integrated   []Integrated
	limits       Limits

	// Unknown lists the envelope members ParseOptions.KeepUnknownUnsafe kept.
	Unknown []UnknownMember
}

// Raw returns the envelope exactly as parsed.
func (e *Envelope) Raw() []byte { return e.raw }

// Manifest returns the decoded manifest.
func (e *Envelope) Manifest() *Manifest { return e.manifest }

// Digest returns the manifest digest from the authentication wrapper (which
// ParseEnvelope has checked against the manifest bytes).
func (e *Envelope) Digest() Digest { return e.digest }

// ManifestBytes returns the encoded bstr-wrapped manifest (the digest input).
func (e *Envelope) ManifestBytes() []byte { return e.manifestItem }

// AuthBlocks returns the authentication blocks.
func (e *Envelope) AuthBlocks() []AuthBlock { return e.blocks }

// Integrated returns the integrated payloads and dependencies in envelope order.
func (e *Envelope) Integrated() []Integrated { return e.integrated }

// IntegratedPayload returns the entry with the given text key (e.g. "#tc").
func (e *Envelope) IntegratedPayload(key string) ([]byte, bool) {
	for _, p := range e.integrated {
		if p.Key == key {
			return p.Data, true
		}
	}
	return nil, false
}

// SeveredPresent reports whether the envelope carries the severed member s.
func (e *Envelope) SeveredPresent(s Section) bool { _, ok := e.severed[s]; return ok }

// ParseEnvelope decodes a SUIT_Envelope, tagged (107) or untagged, checks
// the manifest digest in the authentication wrapper against the manifest
// bytes, and decodes the manifest and every severed member the envelope
// carries (each checked against its digest in the manifest). It does not
// check signatures: call Verify before trusting anything in it.
func ParseEnvelope(data []byte, o ParseOptions) (*Envelope, error) {
	lim := o.Limits.WithDefaults()
	if len(data) > lim.MaxEnvelopeSize {
		return nil, &DecodeError{Where: "envelope", Msg: fmt.Sprintf("%d bytes exceed the limit of %d", len(data), lim.MaxEnvelopeSize), Err: ErrLimit}
	}
	if err := wellFormed(data, &lim); err != nil {
		return nil, in("envelope", err)
	}
	e := &Envelope{raw: data, severed: map[Section][]byte{}, limits: lim}
	c := newCur(data, "envelope")
	if t, ok := c.tag(); ok {
		if t != TagEnvelope {
			if t == TagManifest {
				return nil, c.errf(0, "a bare SUIT_Manifest_Tagged (1070) is not an envelope")
			}
			return nil, c.errf(0, "unexpected tag %d (want 107 or none)", t)
		}
		e.Tagged = true
	}
	n, err := c.mapLen("envelope")
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		kh, err := c.peek()
		if err != nil {
			return nil, err
		}
		keyOff := c.Off
		if kh.major == cborwire.MajorText {
			key, _ := c.text("integrated key")
			data, err := c.bytes("integrated payload " + key)
			if err != nil {
				return nil, err
			}
			if len(e.integrated) >= lim.MaxIntegrated {
				return nil, limitErr(keyOff, "more than %d integrated payloads", lim.MaxIntegrated)
			}
			e.integrated = append(e.integrated, Integrated{Key: key, Data: data})
			continue
		}
		key, err := c.int("envelope key")
		if err != nil {
			return nil, err
		}
		switch {
		case key == keyAuth:
			e.authItem, _, err = c.wrapped("authentication wrapper")
		case key == keyManifest:
			e.manifestItem, _, err = c.wrapped("manifest")
		case key == keyDelegation:
			return nil, errorf(ErrMalformed, "envelope key 1 (delegation) is reserved: delegation chains were removed from draft-ietf-suit-trust-domains")
		case Section(key).Severable():
			e.severed[Section(key)], _, err = c.wrapped(Section(key).String())
		case o.KeepUnknownUnsafe:
			var v []byte
			if v, err = c.skip(); err == nil {
				e.Unknown = append(e.Unknown, UnknownMember{Key: key, Size: len(v)})
			}
		default:
			return nil, c.errf(keyOff, "unknown envelope member %d (this processor cannot honour it)", key)
		}
		if err != nil {
			return nil, err
		}
	}
	if e.authItem == nil {
		return nil, errorf(ErrMalformed, "envelope has no authentication wrapper (key 2)")
	}
	if e.manifestItem == nil {
		return nil, errorf(ErrMalformed, "envelope has no manifest (key 3)")
	}
	if len(e.manifestItem) > lim.MaxManifestSize {
		return nil, errorf(ErrLimit, "manifest of %d bytes exceeds the limit of %d", len(e.manifestItem), lim.MaxManifestSize)
	}
	if err := e.parseAuth(&lim); err != nil {
		return nil, err
	}
	ok, err := e.digest.Matches(e.manifestItem)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errorf(ErrUnauthorised, "manifest digest mismatch: wrapper says %s", e.digest)
	}
	_, content, _ := newCur(e.manifestItem, "manifest").wrapped("manifest")
	m, err := parseManifest(content, &lim, o.KeepUnknownUnsafe)
	if err != nil {
		return nil, err
	}
	e.manifest = m
	if err := e.resolveSevered(&lim); err != nil {
		return nil, err
	}
	return e, nil
}

// resolveSevered matches envelope-level severed members with the digests in
// the manifest (draft-ietf-suit-manifest §7.4).
func (e *Envelope) resolveSevered(lim *Limits) error {
	m := e.manifest
	for s, item := range e.severed {
		mem := m.Member(s)
		if mem == nil {
			return errorf(ErrSeveringUnsupported, "envelope carries %s, which the manifest does not reference", s)
		}
		if !mem.Severed {
			return errorf(ErrSeveringUnsupported, "envelope carries %s, which the manifest holds inline", s)
		}
		ok, err := mem.Digest.Matches(item)
		if err != nil {
			return err
		}
		if !ok {
			return errorf(ErrSeveringUnsupported, "%s does not match its digest %s", s, mem.Digest)
		}
		_, content, _ := newCur(item, s.String()).wrapped(s.String())
		if err := mem.fill(s, content, lim); err != nil {
			return err
		}
	}
	return nil
}

// fill decodes member content.
func (mem *Member) fill(s Section, content []byte, lim *Limits) error {
	mem.Raw, mem.Present = content, true
	if s == SectionText {
		t, err := parseText(content, lim)
		if err != nil {
			return err
		}
		mem.Text = t
		return nil
	}
	seq, err := parseSequence(content, s.String()+" sequence", false, 0, lim)
	if err != nil {
		return err
	}
	mem.Sequence = seq
	return nil
}

// parseManifest decodes SUIT_Manifest content (already well-formed checked
// as part of the envelope; re-checked here because it is a nested item).
func parseManifest(content []byte, lim *Limits, keepUnknown bool) (*Manifest, error) {
	if err := wellFormed(content, lim); err != nil {
		return nil, in("manifest", err)
	}
	c := newCur(content, "manifest")
	if _, ok := c.tag(); ok {
		return nil, c.errf(0, "manifest inside an envelope must not be tagged")
	}
	n, err := c.mapLen("manifest")
	if err != nil {
		return nil, err
	}
	m := &Manifest{Raw: content}
	var haveVersion, haveSeq, haveCommon bool
	for i := 0; i < n; i++ {
		keyOff := c.Off
		key, err := c.int("manifest key")
		if err != nil {
			return nil, err
		}
		switch key {
		case keyVersion:
			m.Version, err = c.uint("manifest-version")
			if err == nil && m.Version != 1 {
				return nil, c.errf(keyOff, "manifest-version %d not supported (want 1)", m.Version)
			}
			haveVersion = true
		case keySequenceNum:
			m.SequenceNumber, err = c.uint("manifest-sequence-number")
			haveSeq = true
		case keyCommon:
			var cc []byte
			_, cc, err = c.wrapped("common")
			if err == nil {
				err = parseCommon(cc, &m.Common, lim)
			}
			haveCommon = true
		case keyRefURI:
			m.ReferenceURI, err = c.text("reference-uri")
			m.HasReferenceURI = true
		case keyManifestID:
			m.ComponentID, err = c.componentID("manifest-component-id", lim)
		case int64(SectionValidate), int64(SectionLoad), int64(SectionInvoke), int64(SectionUninstall):
			s := Section(key)
			var sc []byte
			_, sc, err = c.wrapped(s.String())
			if err != nil {
				break
			}
			var seq *Sequence
			seq, err = parseSequence(sc, s.String()+" sequence", false, 0, lim)
			switch s {
			case SectionValidate:
				m.Validate = seq
			case SectionLoad:
				m.Load = seq
			case SectionInvoke:
				m.Invoke = seq
			default:
				m.Uninstall = seq
			}
		case int64(SectionDependencyResolution), int64(SectionPayloadFetch), int64(SectionCandidateVerification),
			int64(SectionInstall), int64(SectionText):
			s := Section(key)
			mem := &Member{}
			h, perr := c.peek()
			if perr != nil {
				return nil, perr
			}
			if h.major == cborwire.MajorArray {
				mem.Severed = true
				mem.Digest, err = c.digest(s.String() + " digest")
			} else {
				var sc []byte
				if _, sc, err = c.wrapped(s.String()); err == nil {
					err = mem.fill(s, sc, lim)
				}
			}
			m.setMember(s, mem)
		default:
			if !keepUnknown {
				return nil, c.errf(keyOff, "unknown manifest member %d (this processor cannot honour it)", key)
			}
			var v []byte
			if v, err = c.skip(); err == nil {
				m.Unknown = append(m.Unknown, UnknownMember{Key: key, Size: len(v)})
			}
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case !haveVersion:
		return nil, errorf(ErrMalformed, "manifest has no manifest-version")
	case !haveSeq:
		return nil, errorf(ErrMalformed, "manifest has no manifest-sequence-number")
	case !haveCommon:
		return nil, errorf(ErrMalformed, "manifest has no common section")
	}
	return m, c.end()
}

func parseCommon(content []byte, cm *Common, lim *Limits) error {
	if err := wellFormed(content, lim); err != nil {
		return in("common", err)
	}
	cm.Raw = content
	c := newCur(content, "common")
	n, err := c.mapLen("common")
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		keyOff := c.Off
		key, err := c.int("common key")
		if err != nil {
			return err
		}
		switch key {
		case keyComponents:
			cnt, err := c.array("components")
			if err != nil {
				return err
			}
			if cnt == 0 {
				return c.errf(keyOff, "components list is empty")
			}
			if cnt > lim.MaxComponents {
				return limitErr(keyOff, "%d components (limit %d)", cnt, lim.MaxComponents)
			}
			for j := 0; j < cnt; j++ {
				id, err := c.componentID(fmt.Sprintf("component %d", j), lim)
				if err != nil {
					return err
				}
				cm.Components = append(cm.Components, id)
			}
		case keyDependencies:
			cnt, err := c.mapLen("dependencies")
			if err != nil {
				return err
			}
			if cnt == 0 {
				return c.errf(keyOff, "dependencies map is empty")
			}
			if cnt > lim.MaxDependencies {
				return limitErr(keyOff, "%d dependencies (limit %d)", cnt, lim.MaxDependencies)
			}
			for j := 0; j < cnt; j++ {
				idx, err := c.uint("dependency index")
				if err != nil {
					return err
				}
				d := Dependency{Index: idx}
				mn, err := c.mapLen("dependency metadata")
				if err != nil {
					return err
				}
				for k := 0; k < mn; k++ {
					mk, err := c.int("dependency metadata key")
					if err != nil {
						return err
					}
					if mk != keyDepPrefix {
						return c.errf(c.Off, "unknown dependency metadata key %d", mk)
					}
					if d.Prefix, err = c.componentID("dependency-prefix", lim); err != nil {
						return err
					}
				}
				cm.Dependencies = append(cm.Dependencies, d)
			}
		case keySharedSequence:
			_, sc, err := c.wrapped("shared-sequence")
			if err != nil {
				return err
			}
			if cm.Shared, err = parseSequence(sc, "shared sequence", true, 0, lim); err != nil {
				return err
			}
		default:
			return c.errf(keyOff, "unknown common member %d", key)
		}
	}
	if err := c.end(); err != nil {
		return err
	}
	// Order dependencies by index and reject collisions with the component
	// list (union index space, as every published example uses).
	deps := cm.Dependencies
	for i := 1; i < len(deps); i++ {
		for j := i; j > 0 && deps[j].Index < deps[j-1].Index; j-- {
			deps[j], deps[j-1] = deps[j-1], deps[j]
		}
	}
	for _, d := range deps {
		if d.Index < uint64(len(cm.Components)) {
			return errorf(ErrComponentUnsupported, "dependency index %d collides with component %s", d.Index, cm.Components[d.Index])
		}
		if d.Index >= uint64(lim.MaxComponents+lim.MaxDependencies) {
			return errorf(ErrLimit, "dependency index %d out of range", d.Index)
		}
	}
	return nil
}

func (c *cur) componentID(name string, lim *Limits) (ComponentID, error) {
	start := c.Off
	n, err := c.array(name)
	if err != nil {
		return nil, err
	}
	if n > lim.MaxIDSegments {
		return nil, limitErr(start, "%s has %d segments (limit %d)", name, n, lim.MaxIDSegments)
	}
	id := make(ComponentID, n)
	for i := range id {
		if id[i], err = c.bytes(name + " segment"); err != nil {
			return nil, err
		}
	}
	// The shared limits, so that every id in an accepted envelope is one the
	// TAM and the TEEP codec accept too.
	if err := id.Check(); err != nil {
		return nil, limitErr(start, "%s: %v", name, err)
	}
	return id, nil
}

func (c *cur) digest(name string) (Digest, error) {
	start := c.Off
	n, err := c.array(name)
	if err != nil {
		return Digest{}, err
	}
	if n < 2 {
		return Digest{}, c.errf(start, "%s: SUIT_Digest needs 2 elements, has %d", name, n)
	}
	var d Digest
	if d.Alg, err = c.int(name + " algorithm"); err != nil {
		return Digest{}, err
	}
	if d.Bytes, err = c.bytes(name + " bytes"); err != nil {
		return Digest{}, err
	}
	for i := 2; i < n; i++ { // $$SUIT_Digest-extensions: skipped
		if _, err := c.skip(); err != nil {
			return Digest{}, err
		}
	}
	if l := digestLen(d.Alg); l != 0 && len(d.Bytes) != l {
		return Digest{}, c.errf(start, "%s: %s digest of %d bytes (want %d)", name, DigestAlgName(d.Alg), len(d.Bytes), l)
	}
	return d, nil
}

// sharedAllowed lists what a shared sequence may contain besides conditions.
func sharedAllowed(code int64) bool {
	switch code {
	case DirSetComponentIndex, DirOverrideParameters, DirTryEach, DirRunSequence:
		return true
	}
	return IsCondition(code)
}

// parseSequence decodes a SUIT_Command_Sequence (or SUIT_Shared_Sequence).
func parseSequence(content []byte, where string, shared bool, nesting int, lim *Limits) (*Sequence, error) {
	if nesting > lim.MaxSequenceNesting {
		return nil, &DecodeError{Where: where, Msg: fmt.Sprintf("sequences nested deeper than %d", lim.MaxSequenceNesting), Err: ErrLimit}
	}
	if err := wellFormed(content, lim); err != nil {
		return nil, in(where, err)
	}
	c := newCur(content, where)
	n, err := c.array("command sequence")
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, c.errf(0, "empty command sequence")
	}
	if n%2 != 0 {
		return nil, c.errf(0, "command sequence has an odd number (%d) of elements", n)
	}
	if n/2 > lim.MaxCommands {
		return nil, limitErr(0, "%d commands (limit %d)", n/2, lim.MaxCommands)
	}
	seq := &Sequence{Raw: content, Commands: make([]Command, 0, n/2)}
	for i := 0; i < n/2; i++ {
		cmd := Command{Offset: c.Off}
		if cmd.Code, err = c.int("command code"); err != nil {
			return nil, err
		}
		if shared && !sharedAllowed(cmd.Code) {
			return nil, c.errf(cmd.Offset, "%s is not allowed in the shared sequence", CommandName(cmd.Code))
		}
		argOff := c.Off
		if cmd.Arg, err = c.skip(); err != nil {
			return nil, err
		}
		ac := newCurAt(content, argOff, where)
		name := CommandName(cmd.Code)
		switch {
		case takesRepPolicy(cmd.Code):
			cmd.Policy, err = ac.uint(name + " reporting policy")
		case cmd.Code == DirSetComponentIndex:
			cmd.Index, err = ac.index()
		case cmd.Code == DirOverrideParameters || cmd.Code == DirSetParameters:
			cmd.Params, err = ac.params(name, lim)
		case cmd.Code == DirRunSequence:
			var sc []byte
			if _, sc, err = ac.wrapped("run-sequence argument"); err == nil {
				cmd.Sub, err = parseSequence(sc, where+"/run-sequence", shared, nesting+1, lim)
			}
		case cmd.Code == DirTryEach:
			err = ac.tryEach(&cmd, where, shared, nesting, lim)
		case cmd.Code < 0:
			// custom command: bstr / tstr / int / nil (draft-ietf-suit-manifest §8.4.9)
			h, herr := ac.peek()
			if herr != nil {
				return nil, herr
			}
			if h.major > cborwire.MajorText && !(h.major == cborwire.MajorSimple && h.arg == simpleNull) {
				err = ac.errf(argOff, "custom command %d: argument must be bstr, tstr, int or nil", cmd.Code)
			}
		default:
			// Unknown or not yet interpreted commands keep their raw
			// argument; the processor rejects them with
			// command-unsupported when they are reached.
		}
		if err != nil {
			return nil, err
		}
		seq.Commands = append(seq.Commands, cmd)
	}
	return seq, c.end()
}

func (c *cur) index() (Index, error) {
	start := c.Off
	if c.isTrue() {
		return Index{Kind: IndexAll}, nil
	}
	h, err := c.peek()
	if err != nil {
		return Index{}, err
	}
	switch h.major {
	case cborwire.MajorUint:
		v, _ := c.uint("component index")
		return Index{Kind: IndexOne, Indices: []uint64{v}}, nil
	case cborwire.MajorArray:
		n, _ := c.array("component index list")
		if n == 0 {
			return Index{}, c.errf(start, "empty component index list")
		}
		idx := Index{Kind: IndexList, Indices: make([]uint64, n)}
		for i := range idx.Indices {
			if idx.Indices[i], err = c.uint("component index"); err != nil {
				return Index{}, err
			}
		}
		return idx, nil
	}
	return Index{}, c.errf(start, "set-component-index: want uint, true or [+uint], got %s", cborwire.MajorName(h.major))
}

func (c *cur) tryEach(cmd *Command, where string, shared bool, nesting int, lim *Limits) error {
	start := c.Off
	n, err := c.array("try-each argument")
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if i == n-1 && c.isNull() {
			cmd.TryNil = true
			break
		}
		_, sc, err := c.wrapped("try-each alternative")
		if err != nil {
			return err
		}
		seq, err := parseSequence(sc, fmt.Sprintf("%s/try-each[%d]", where, i), shared, nesting+1, lim)
		if err != nil {
			return err
		}
		cmd.Sequences = append(cmd.Sequences, seq)
	}
	if len(cmd.Sequences) < 2 && !(len(cmd.Sequences) == 1 && cmd.TryNil) {
		return c.errf(start, "try-each needs at least two alternatives")
	}
	return nil
}

// params decodes a parameters map, checking each known value's type.
func (c *cur) params(name string, lim *Limits) ([]Param, error) {
	start := c.Off
	n, err := c.mapLen(name + " parameters")
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, c.errf(start, "%s: empty parameters map", name)
	}
	ps := make([]Param, 0, n)
	for i := 0; i < n; i++ {
		key, err := c.int("parameter key")
		if err != nil {
			return nil, err
		}
		vOff := c.Off
		raw, err := c.skip()
		if err != nil {
			return nil, err
		}
		p := Param{Key: key, Raw: raw}
		vc := newCurAt(c.Data, vOff, c.what)
		pn := ParamName(key)
		switch key {
		case ParamVendorID:
			if t, ok := vc.tag(); ok {
				if t != 112 {
					return nil, vc.errf(vOff, "vendor-id: unexpected tag %d (want 112 CBOR-PEN)", t)
				}
				var b []byte
				b, err = vc.bytes("vendor-id PEN")
				p.Value = PEN(b)
			} else {
				p.Value, err = vc.uuid(pn)
			}
		case ParamClassID, ParamDeviceID:
			p.Value, err = vc.uuid(pn)
		case ParamImageDigest:
			var dc []byte
			if _, dc, err = vc.wrapped(pn); err == nil {
				var d Digest
				d, err = ParseDigest(dc)
				p.Value = d
			}
		case ParamComponentSlot, ParamImageSize, ParamSourceComponent:
			p.Value, err = vc.uint(pn)
		case ParamStrictOrder, ParamSoftFailure:
			p.Value, err = vc.bool(pn)
		case ParamContent, ParamInvokeArgs, ParamFetchArguments:
			p.Value, err = vc.bytes(pn)
		case ParamURI:
			p.Value, err = vc.text(pn)
		case ParamEncryptionInfo:
			var ec []byte
			if _, ec, err = vc.wrapped(pn); err == nil {
				p.Value, err = ParseEncryptionInfo(ec)
			}
		default:
			if key < 0 {
				h, herr := vc.peek()
				if herr != nil {
					return nil, herr
				}
				switch {
				case h.major == cborwire.MajorUint || h.major == cborwire.MajorNint:
					p.Value, err = vc.int(pn)
				case h.major == cborwire.MajorBytes:
					p.Value, err = vc.bytes(pn)
				case h.major == cborwire.MajorText:
					p.Value, err = vc.text(pn)
				case h.major == cborwire.MajorSimple && (h.arg == simpleTrue || h.arg == simpleFalse):
					p.Value, err = vc.bool(pn)
				default:
					err = vc.errf(vOff, "%s: custom parameter must be int, bool, tstr or bstr", pn)
				}
			} else {
				p.Value = RawValue(raw)
			}
		}
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (c *cur) uuid(name string) ([]byte, error) {
	start := c.Off
	b, err := c.bytes(name)
	if err != nil {
		return nil, err
	}
	if len(b) != 16 {
		return nil, c.errf(start, "%s: want a 16-byte UUID, got %d bytes", name, len(b))
	}
	return b, nil
}

// parseText decodes SUIT_Text_Map.
func parseText(content []byte, lim *Limits) (*Text, error) {
	if err := wellFormed(content, lim); err != nil {
		return nil, in("text", err)
	}
	c := newCur(content, "text")
	n, err := c.mapLen("text map")
	if err != nil {
		return nil, err
	}
	t := &Text{}
	for i := 0; i < n; i++ {
		tag, err := c.text("language tag")
		if err != nil {
			return nil, err
		}
		lang := TextLanguage{Tag: tag, Manifest: map[int64]string{}}
		ln, err := c.mapLen("text for " + tag)
		if err != nil {
			return nil, err
		}
		for j := 0; j < ln; j++ {
			h, err := c.peek()
			if err != nil {
				return nil, err
			}
			if h.major == cborwire.MajorArray {
				id, err := c.componentID("text component id", lim)
				if err != nil {
					return nil, err
				}
				tc := TextComponent{ID: id, Fields: map[int64]string{}}
				fn, err := c.mapLen("component text")
				if err != nil {
					return nil, err
				}
				for k := 0; k < fn; k++ {
					fk, err := c.int("text key")
					if err != nil {
						return nil, err
					}
					if tc.Fields[fk], err = c.text("component text"); err != nil {
						return nil, err
					}
				}
				lang.Components = append(lang.Components, tc)
				continue
			}
			k, err := c.int("text key")
			if err != nil {
				return nil, err
			}
			if lang.Manifest[k], err = c.text("manifest text"); err != nil {
				return nil, err
			}
		}
		t.Languages = append(t.Languages, lang)
	}
	return t, c.end()
}
