package fleet

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/appraiser"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/internal/tam/teepcoap"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/suit"
)

// DeviceSpec names a device and its TEEs.
type DeviceSpec struct {
	Name string
	TEEs []string
	// CoAP: the device reaches the TAM over coap:// (UDP) instead of HTTP.
	CoAP bool
}

// Options configure Start.
type Options struct {
	Dir    string // the TAM's state in Dir/tam, device NAME's in Dir/devices/NAME
	Fleet  []DeviceSpec
	Logger *slog.Logger
	// Events, when set, receives every Agent event with its device's name;
	// a device calls it from one goroutine at a time (device.Options.Events).
	Events func(device string, ev agent.Event)
	// UserAgent the devices send to the TAM.
	UserAgent string
}

// Device is one device of the fleet.
type Device struct {
	Name string
	*device.Device
}

// World is a running TAM and its fleet.
type World struct {
	TAM       *tamserver.TAM
	URL       string // the TAM's TEEP URL
	CoAPURL   string // the TAM's coap:// URL
	SignerKey *cosekey.Key
	Signer    *cosekey.Signer
	Devices   []*Device
	stop      func() error
}

// Start provisions the devices' TEEs under o.Dir/devices, starts a TAM on
// 127.0.0.1 (SQLite in o.Dir/tam) whose Verifier endorses every TEE's
// attestation key, makes a Trusted Component signer the TAM trusts, and
// opens each device trusting the TAM and the signer.
func Start(ctx context.Context, o Options) (w *World, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	w = &World{stop: func() error { return nil }}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	// The TEEs exist first: the TAM's Verifier must know their attestation
	// keys (a device maker's endorsements).
	endorse, err := provision(o)
	if err != nil {
		return w, err
	}
	if err := w.startTAM(ctx, o, endorse); err != nil {
		return w, err
	}
	if err := w.makeSigner(ctx); err != nil {
		return w, err
	}
	for _, f := range o.Fleet {
		if err := w.openDevice(ctx, o, f); err != nil {
			return w, err
		}
	}
	return w, nil
}

func deviceDir(o Options, name string) string { return filepath.Join(o.Dir, "devices", name) }

func provision(o Options) ([]verifier.Endorsement, error) {
	var out []verifier.Endorsement
	for _, f := range o.Fleet {
		keys, err := device.Provision(deviceDir(o, f.Name), f.TEEs...)
		if err != nil {
			return nil, err
		}
		for i, k := range keys {
			out = append(out, verifier.Endorsement{Name: "softtee " + f.Name + "/" + f.TEEs[i], Key: k})
		}
	}
	return out, nil
}

func (w *World) startTAM(ctx context.Context, o Options, endorse []verifier.Endorsement) error {
	v, err := verifier.New(verifier.Config{Policy: &verifier.Policy{ID: "demo", Endorsements: endorse}})
	if err != nil {
		return err
	}
	srv, err := tamserver.Open(ctx, tamserver.Options{DataDir: filepath.Join(o.Dir, "tam"), Logger: o.Logger, Version: "demo",
		Appraiser: &appraiser.Verifier{Local: v}, CoAPAddr: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln, nil) }()
	w.TAM, w.URL = srv, "http://"+ln.Addr().String()+"/tam"
	w.CoAPURL = "coap://" + srv.CoAP.Addr(teepcoap.TransportUDP).String() + "/tam"
	w.stop = func() error {
		cancel()
		err := <-served
		if cerr := srv.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return nil
}

// makeSigner makes a Trusted Component signer and has the TAM trust it.
func (w *World) makeSigner(ctx context.Context) error {
	var err error
	if w.SignerKey, err = cosekey.Generate(cosekey.AlgESP256); err != nil {
		return err
	}
	if w.Signer, err = cosekey.NewSigner(w.SignerKey, 0); err != nil {
		return err
	}
	_, err = w.TAM.Engine.AddTrustedKey(ctx, tam.RoleTCSigner, w.SignerKey.PublicKey(), "demo signer")
	return err
}

func (w *World) openDevice(ctx context.Context, o Options, f DeviceSpec) error {
	url := w.URL
	if f.CoAP {
		url = w.CoAPURL
	}
	do := device.Options{StateDir: deviceDir(o, f.Name), TAM: url, TEEs: f.TEEs, Once: true,
		TAMKeys: w.TAM.Engine.PublicKeys(), SignerKeys: []*cosekey.Key{w.SignerKey.PublicKey()},
		UserAgent: o.UserAgent, Logger: o.Logger}
	if o.Events != nil {
		name := f.Name
		do.Events = func(ev agent.Event) { o.Events(name, ev) }
	}
	d, err := device.Open(ctx, do)
	if err != nil {
		return err
	}
	w.Devices = append(w.Devices, &Device{Name: f.Name, Device: d})
	return nil
}

// Close stops the TAM and closes every device.
func (w *World) Close() error {
	errs := []error{w.stop()}
	for _, d := range w.Devices {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}

// PayloadID is the component id of Trusted Component name's payload.
func PayloadID(name string) suit.ComponentID {
	return suit.NewComponentID("TEEP-Device", "SecureFS", name, "ta")
}

// Envelope builds and signs a Trusted Component: a SUIT manifest
// (draft-ietf-teep-protocol-26 Appendix E layout) with the payload
// integrated, the software TEE's vendor and class ids as conditions.
func Envelope(signer *cosekey.Signer, name string, seq uint64, payload []byte) ([]byte, error) {
	env, err := suit.Build(suit.ManifestSpec{
		ManifestComponentID: suit.NewComponentID("TEEP-Device", "SecureFS", name, "suit"),
		SequenceNumber:      seq,
		VendorID:            softtee.DefaultVendorID[:],
		ClassID:             softtee.DefaultClassID[:],
		Components:          []suit.ComponentSpec{{ID: PayloadID(name), Payload: payload, Integrated: true}},
	})
	if err != nil {
		return nil, err
	}
	if err := env.Sign(signer); err != nil {
		return nil, err
	}
	return env.Marshal(suit.MarshalOptions{})
}
