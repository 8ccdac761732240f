package tam

import (
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"abéx", 4, "abé"}, // a whole two-byte rune right at the limit stays
		{"abéx", 3, "ab"},  // a rune the limit splits goes
		{"a€b", 3, "a"},
		{"€", 0, ""},
	} {
		got := truncate(c.in, c.max)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
