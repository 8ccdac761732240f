package processor_test

import (
	"testing"

	"github.com/teep-go/teep/suit/processor"
	"github.com/teep-go/teep/suit/processor/storetest"
)

func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) processor.ComponentStore { return processor.NewMemStore() })
}
