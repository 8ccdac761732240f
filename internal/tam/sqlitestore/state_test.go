package sqlitestore

import (
	"reflect"
	"testing"
)

// sortKeyed orders by the first stored value, then the second, as SQLite's
// ORDER BY does for TEXT (byte order) and INTEGER columns: the device-state
// read has no ORDER BY and relies on it.
func TestSortKeyed(t *testing.T) {
	rows := []keyed[string]{
		{"b", int64(2), "b2"},
		{"a", int64(10), "a10"},
		{"b", int64(1), "b1"},
		{"a", int64(9), "a9"},
		{"B", int64(5), "B5"}, // upper case sorts first in byte order
	}
	want := []string{"B5", "a9", "a10", "b1", "b2"}
	if got := sortKeyed(rows); !reflect.DeepEqual(got, want) {
		t.Fatalf("sortKeyed: %q, want %q", got, want)
	}
	one := []keyed[int]{{"z", nil, 3}, {"x", nil, 1}, {"y", nil, 2}}
	if got := sortKeyed(one); !reflect.DeepEqual(got, []int{1, 2, 3}) {
		t.Fatalf("sortKeyed by one key: %v", got)
	}
	if got := sortKeyed[int](nil); got != nil {
		t.Fatalf("sortKeyed of no rows: %v, want nil (as the Tx methods return)", got)
	}
}
