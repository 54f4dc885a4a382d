// Package dedup keeps a reported signal from being stored twice: the API
// commits the signals applications report (so that 202 means durable),
// and the monitor then emits the same signal event to its Sink; Sink
// drops that copy and passes everything else on to the store's writer.
package dedup
