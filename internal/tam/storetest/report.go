package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

func testReports(t *testing.T, s tam.Store) {
	d, other := device(1), device(2)
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		return tx.PutDevice(ctx, other)
	})
	var ids []int64
	for i := 0; i < 5; i++ {
		r := tam.Report{DeviceKID: d.KID, At: at(time.Duration(i) * time.Second), Kind: "error", ErrCode: 11, Message: fmt.Sprint("m", i),
			SUITReports: [][]byte{{0xa1, byte(i)}, {0xa2}}}
		update(t, s, func(tx tam.Tx) error {
			id, err := tx.AddReport(ctx, r, 3)
			ids = append(ids, id)
			return err
		})
	}
	update(t, s, func(tx tam.Tx) error {
		_, err := tx.AddReport(ctx, tam.Report{DeviceKID: other.KID, At: base, Kind: "success"}, 3)
		return err
	})
	view(t, s, func(tx tam.Tx) error {
		rs, err := tx.Reports(ctx, d.KID, 0)
		if err != nil {
			return err
		}
		if len(rs) != 3 {
			t.Fatalf("kept %d reports, want 3", len(rs))
		}
		for i, r := range rs {
			n := 4 - i
			want := tam.Report{ID: ids[n], DeviceKID: d.KID, At: at(time.Duration(n) * time.Second), Kind: "error", ErrCode: 11,
				Message: fmt.Sprint("m", n), SUITReports: [][]byte{{0xa1, byte(n)}, {0xa2}}}
			equal(t, fmt.Sprintf("report %d", i), r, want)
		}
		rs, err = tx.Reports(ctx, d.KID, 1)
		if len(rs) != 1 || rs[0].ID != ids[4] {
			t.Fatalf("Reports(limit 1) = %+v", rs)
		}
		rs, _ = tx.Reports(ctx, other.KID, 0)
		if len(rs) != 1 {
			t.Fatalf("other device lost its report to the cap: %d", len(rs))
		}
		return err
	})
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error {
		_, err := tx.AddReport(ctx, tam.Report{DeviceKID: []byte{7}, At: base, Kind: "success"}, 0)
		return err
	}), tam.ErrNotFound, "report for an unknown device")
}
