package processor

// Observer is told about every finished run, successful or not. It is how
// a server counts runs without the processor knowing how: the Prometheus
// adapter lives in the server's tree, so this library stays free of
// metrics and HTTP dependencies. Observe is called with the processor's
// lock held: it must be quick and must not call back into the Processor.
type Observer interface {
	Observe(*Result)
}

// observe logs a finished run and passes it to the configured Observer.
func (p *Processor) observe(res *Result) {
	attrs := []any{"procedure", res.Procedure, "manifest", res.ManifestID.String(),
		"sequence", res.SequenceNumber, "digest", res.Digest.String(), "duration", res.Duration}
	if res.Failure != nil {
		p.log.Warn("suit: procedure failed", append(attrs, "reason", res.Failure.Reason.String(), "error", res.Failure.Error())...)
	} else {
		p.log.Info("suit: procedure succeeded", append(attrs, "installed", len(res.Installed), "removed", len(res.Removed))...)
	}
	if p.cfg.Observer != nil {
		p.cfg.Observer.Observe(res)
	}
}
