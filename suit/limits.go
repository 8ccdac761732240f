package suit

// Limits bound what the decoders accept. A zero field means the default.
type Limits struct {
	MaxEnvelopeSize     int // whole envelope including integrated payloads
	MaxManifestSize     int // encoded SUIT_Manifest
	MaxDepth            int // CBOR nesting depth of any decoded item
	MaxItems            int // elements of one array or pairs of one map
	MaxComponents       int // entries of suit-components
	MaxDependencies     int // entries of suit-dependencies
	MaxIDSegments       int // segments of one component identifier; MaxComponentIDSegments caps it
	MaxCommands         int // commands in one sequence
	MaxSequenceNesting  int // try-each / run-sequence nesting
	MaxAuthBlocks       int // authentication blocks in the wrapper
	MaxIntegrated       int // integrated payloads and dependencies
	MaxDependencyLevels int // dependency chain length (processor)
}

// Default limits. They fit every published example with a wide margin and
// keep a hostile envelope's decode cost small.
const (
	DefaultMaxEnvelopeSize     = 64 << 20
	DefaultMaxManifestSize     = 256 << 10
	DefaultMaxDepth            = 24
	DefaultMaxItems            = 4096
	DefaultMaxComponents       = 256
	DefaultMaxDependencies     = 64
	DefaultMaxIDSegments       = MaxComponentIDSegments
	DefaultMaxCommands         = 1024
	DefaultMaxSequenceNesting  = 4
	DefaultMaxAuthBlocks       = 8
	DefaultMaxIntegrated       = 64
	DefaultMaxDependencyLevels = 8
)

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxEnvelopeSize:     DefaultMaxEnvelopeSize,
		MaxManifestSize:     DefaultMaxManifestSize,
		MaxDepth:            DefaultMaxDepth,
		MaxItems:            DefaultMaxItems,
		MaxComponents:       DefaultMaxComponents,
		MaxDependencies:     DefaultMaxDependencies,
		MaxIDSegments:       DefaultMaxIDSegments,
		MaxCommands:         DefaultMaxCommands,
		MaxSequenceNesting:  DefaultMaxSequenceNesting,
		MaxAuthBlocks:       DefaultMaxAuthBlocks,
		MaxIntegrated:       DefaultMaxIntegrated,
		MaxDependencyLevels: DefaultMaxDependencyLevels,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxEnvelopeSize, d.MaxEnvelopeSize)
	set(&l.MaxManifestSize, d.MaxManifestSize)
	set(&l.MaxDepth, d.MaxDepth)
	set(&l.MaxItems, d.MaxItems)
	set(&l.MaxComponents, d.MaxComponents)
	set(&l.MaxDependencies, d.MaxDependencies)
	set(&l.MaxIDSegments, d.MaxIDSegments)
	set(&l.MaxCommands, d.MaxCommands)
	set(&l.MaxSequenceNesting, d.MaxSequenceNesting)
	set(&l.MaxAuthBlocks, d.MaxAuthBlocks)
	set(&l.MaxIntegrated, d.MaxIntegrated)
	set(&l.MaxDependencyLevels, d.MaxDependencyLevels)
	return l
}
