package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
)

// simDevice is one simulated device: round runs one policy-check round
// and returns the TEEP messages it sent (POSTs).
type simDevice interface {
	round(ctx context.Context) (msgs int, err error)
	close() error
}

// fullDevice is a device of the full model: the device runtime
// (internal/device) with one software TEE (internal/tee/softtee: sealed
// storage on disk, its own Agent and attestation keys), its TEEP Agent
// (internal/agent: the SUIT processor installs each component into the
// TEE) and the Broker that carries the messages. A round is the Broker's
// policy check (Sync).
type fullDevice struct {
	d *device.Device
}

// postsMetric counts the Broker's POSTs (HTTP and CoAP).
const postsMetric = "teep_broker_http_posts_total"

func (f *fullDevice) posts() (float64, error) {
	mfs, err := f.d.Registry().Gather()
	if err != nil {
		return 0, err
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != postsMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return n, nil
}

func (f *fullDevice) round(ctx context.Context) (int, error) {
	before, err := f.posts()
	if err != nil {
		return 0, fail("other", "metrics: %w", err)
	}
	serr := f.d.Broker().Sync(ctx, device.DefaultTEE)
	after, err := f.posts()
	if err != nil {
		return 0, fail("other", "metrics: %w", err)
	}
	msgs := int(after - before)
	if serr != nil {
		var he *broker.HTTPError
		var ce *broker.CoAPError
		var se *broker.SyncError
		switch {
		case errors.As(serr, &he):
			return msgs, fail("http-"+strconv.Itoa(he.Status), "%w", serr)
		case errors.As(serr, &ce):
			return msgs, fail("coap-"+ce.Code.String(), "%w", serr)
		case errors.As(serr, &se):
			return msgs, fail("device", "%w", serr)
		}
		return msgs, fail("transport", "%w", serr)
	}
	return msgs, nil
}

func (f *fullDevice) close() error { return f.d.Close() }

// fullFleet is the full model's devices before they are opened: their
// state directories, provisioned, and their attestation keys (for the
// Verifier's endorsements).
type fullFleet struct {
	dirs   []string
	attest []*cosekey.Key
}

// provisionFull creates n software TEEs under dir.
func provisionFull(dir string, n int) (*fullFleet, error) {
	f := &fullFleet{}
	for i := range n {
		state := filepath.Join(dir, "devices", strconv.Itoa(i))
		keys, err := device.Provision(state, device.DefaultTEE)
		if err != nil {
			return nil, fmt.Errorf("fleetsim: provision device %d: %w", i, err)
		}
		f.dirs = append(f.dirs, state)
		f.attest = append(f.attest, keys[0])
	}
	return f, nil
}

// open opens every device against the TAM at url, trusting tamKeys and the
// signer; it returns the devices and their Agent keys.
func (f *fullFleet) open(ctx context.Context, url, caFile string, tamKeys []*cosekey.Key, signer *cosekey.Key) ([]simDevice, []*cosekey.Key, error) {
	var devs []simDevice
	var keys []*cosekey.Key
	fail := func(err error) ([]simDevice, []*cosekey.Key, error) {
		for _, d := range devs {
			d.close()
		}
		return nil, nil, err
	}
	for i, state := range f.dirs {
		d, err := device.Open(ctx, device.Options{StateDir: state, TAM: url, TEEs: []string{device.DefaultTEE}, Once: true,
			TAMKeys: tamKeys, SignerKeys: []*cosekey.Key{signer}, TAMCA: caFile,
			// One attempt: a benchmark counts a failure, it does not hide it.
			Retry: broker.Retry{MaxAttempts: 1}, CoAP: broker.CoAPOptions{Retry: broker.Retry{MaxAttempts: 1}},
			UserAgent: "teep-fleetsim"})
		if err != nil {
			return fail(fmt.Errorf("fleetsim: open device %d: %w", i, err))
		}
		devs = append(devs, &fullDevice{d: d})
		k, err := device.PublicKey(state, device.DefaultTEE, false)
		if err != nil {
			return fail(fmt.Errorf("fleetsim: device %d: %w", i, err))
		}
		keys = append(keys, k)
	}
	return devs, keys, nil
}
