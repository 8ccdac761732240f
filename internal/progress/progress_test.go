package progress

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBarRedrawsAtMostOncePerInterval(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	b := New(&buf, "rounds", 10, Options{Force: true, Interval: time.Second, Clock: c.now})
	b.Add(1) // first draw
	b.Add(1) // same instant: no draw
	c.t = c.t.Add(999 * time.Millisecond)
	b.Add(1) // still inside the interval
	if n := strings.Count(buf.String(), "\r"); n != 1 {
		t.Fatalf("draws = %d, want 1: %q", n, buf.String())
	}
	c.t = c.t.Add(time.Millisecond)
	b.Add(2)
	b.Done()
	b.Done()
	b.Add(1) // after Done: counted, not drawn
	want := "\rrounds [===                           ] 1/10  10%" +
		"\rrounds [===============               ] 5/10  50%" +
		"\rrounds [===============               ] 5/10  50%\n"
	if buf.String() != want {
		t.Fatalf("got  %q\nwant %q", buf.String(), want)
	}
}

func TestBarCounterWithoutTotal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "bytes", 0, Options{Force: true})
	b.Add(42)
	b.Done()
	if buf.String() != "\rbytes 42\rbytes 42\n" {
		t.Fatalf("%q", buf.String())
	}
}

func TestBarOverflowClamped(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "x", 2, Options{Force: true})
	b.Add(5)
	if !strings.Contains(buf.String(), "5/2 100%") || strings.Count(buf.String(), "=") != width {
		t.Fatalf("%q", buf.String())
	}
}

// TestQuietWhenNotATerminal: a buffer, a regular file and a pipe get
// nothing.
func TestQuietWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "x", 3, Options{})
	b.Add(3)
	b.Done()
	if buf.Len() != 0 {
		t.Fatalf("wrote %q to a buffer", buf.String())
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, out := range []*os.File{f, w} {
		if IsTerminal(out) {
			t.Fatalf("%s is reported a terminal", out.Name())
		}
		b := New(out, "x", 3, Options{})
		b.Add(3)
		b.Done()
	}
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Fatalf("wrote %d bytes to a regular file", st.Size())
	}
	if IsTerminal(nil) {
		t.Fatal("nil is a terminal")
	}
}

func TestNilBarAndConcurrentAdds(t *testing.T) {
	var nb *Bar
	nb.Add(1)
	nb.Done()
	var buf bytes.Buffer
	b := New(&buf, "x", 1000, Options{Force: true, Interval: time.Hour})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 100 {
				b.Add(1)
			}
		})
	}
	wg.Wait()
	b.Done()
	if !strings.HasSuffix(buf.String(), "1000/1000 100%\n") {
		t.Fatalf("%q", buf.String())
	}
}

func TestReaderCountsBytesAndEndsAtEOF(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	b := New(&buf, "receiving", 3<<20, Options{Force: true, Interval: time.Second, Clock: c.now, Bytes: true})
	r := Reader(strings.NewReader(strings.Repeat("x", 3<<20)), b)
	chunk := make([]byte, 1<<20)
	for i := 0; ; i++ {
		n, err := r.Read(chunk)
		if err != nil {
			break
		}
		if n > 0 {
			c.t = c.t.Add(time.Second)
		}
	}
	got := buf.String()
	if !strings.HasSuffix(got, "3.0 MiB/3.0 MiB 100%\n") || !strings.Contains(got, "\rreceiving [==========                    ] 1.0 MiB/3.0 MiB  33%") {
		t.Fatalf("bar: %q", got)
	}
}

func TestByteCounts(t *testing.T) {
	b := &Bar{bytes: true}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB"} {
		if got := b.count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTransfer(t *testing.T) {
	const min = 1 << 20
	for _, tc := range []struct {
		name string
		size int64 // announced
		n    int   // sent
		want string
	}{
		{"small announced", 1000, 1000, ""},
		{"large announced", 2 << 20, 2 << 20, "2.0 MiB/2.0 MiB 100%\n"},
		{"unknown, stays small", -1, 1000, ""},
		{"unknown, grows large", -1, 2 << 20, "\rbody 2.0 MiB\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := Transfer(strings.NewReader(strings.Repeat("x", tc.n)), forcedTerminal{&buf}, "body", tc.size, min)
			if _, err := io.Copy(io.Discard, r); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); tc.want == "" && got != "" || !strings.HasSuffix(got, tc.want) {
				t.Fatalf("got %q, want suffix %q", got, tc.want)
			}
		})
	}
}

type forcedTerminal struct{ *bytes.Buffer }

func (forcedTerminal) IsTerminal() bool { return true }
