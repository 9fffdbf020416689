package fakekernel_test

import (
	"testing"
)

// BenchmarkExecuteRoundTrip is one execute_request of print(1+1) through the project's ZeroMQ
// client until the reply and iopub idle are in: compare with ipykernel's ~5 ms
// (BenchmarkExecuteZMQ in jupyter/kernelconn).
func BenchmarkExecuteRoundTrip(b *testing.B) {
	_, info := start(b, nil)
	c := dial(b, info)
	ctx := testCtx(b)
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Execute(ctx, "print(1+1)")
		if err != nil || res.Status != "ok" || res.Stdout != "2\n" {
			b.Fatalf("execute: %v %+v", err, res)
		}
	}
}
