// Package yamlnode decodes YAML strictly by walking go.yaml.in/yaml/v3
// node trees, so that every problem names its line and field path.
//
// It exists because the daemon configuration (cmd/safetyd) and the
// scenario files (scenarios) both refuse unknown keys, report repeated
// keys, type errors and unreadable values with "file:line: path: what to
// do", and collect every problem rather than stopping at the first. The
// two decoders had grown the same walk twice; this package is that walk,
// once: node kinds, path joining, mappings with known keys (and a "did
// you mean" for near misses), scalar readers and problem collection.
//
// What stays with each caller is its domain: the structure being filled,
// its own error type, and its wording. A Decoder's Wording lets a caller
// keep the messages its users (and its tests) know; the defaults are the
// daemon's "expected X, got Y" style. Values are quoted through
// Decoder.Quote so that a caller can keep secrets such as phone numbers
// out of messages, and Decoder.ShowValues decides whether a misplaced
// value is echoed at all.
package yamlnode
