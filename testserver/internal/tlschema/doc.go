// Package tlschema reads Telegram's TL schemas and translates API objects
// between layers, so that the test server can answer clients of older
// layers (docs/testserver.md, "API layers").
//
// Parse reads a schema file; Pack and Unpack hold many layers in one
// compact, deduplicated form, which the generator in ./gen writes from
// the schemas released gotd/td module versions carry (layers.tlc.gz,
// with each layer's source recorded in it and in SOURCES.md). Schema
// decodes and encodes objects generically (Object), and Translator maps
// them from one layer to another by constructor and field name.
//
// Nothing here is generated from or copied out of another project's
// code: the schemas are data.
package tlschema
