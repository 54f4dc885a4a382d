package testserver

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/testserver/internal/tlschema"
)

// NativeLayer is the API layer the server's handlers speak (gotd/td
// v0.161.0's); clients of other layers are translated to and from it.
const NativeLayer = tlschema.Native

// Layers returns the API layers the server answers in, ascending: every
// layer from 144 to NativeLayer whose schema is embedded (docs/testserver.md
// lists them and the gaps).
func Layers() []int {
	set, err := tlschema.Embedded()
	if err != nil {
		return []int{NativeLayer}
	}
	return set.Layers()
}

// errLayerInvalid answers every call of a client whose layer has no
// schema: a clear error instead of answers it cannot decode.
var errLayerInvalid = tgerr.New(400, "CONNECTION_LAYER_INVALID")

// layerState remembers each auth key's API layer (the last
// invokeWithLayer it sent; NativeLayer until then) and converts that
// key's requests, answers and pushed updates.
type layerState struct {
	log *zap.Logger

	mu     sync.RWMutex
	byKey  map[[8]byte]int
	convs  map[int]*layerConv
	logged map[int]bool // unservable layers already logged
}

// layerConv translates between one client layer and the native one.
type layerConv struct {
	layer          int
	client, native *tlschema.Schema
	up, down       tlschema.Translator
}

func newLayerState(log *zap.Logger) *layerState {
	return &layerState{log: log, byKey: map[[8]byte]int{}, convs: map[int]*layerConv{}, logged: map[int]bool{}}
}

// peekLayer finds the layer of the innermost invokeWithLayer among a
// request's leading wrappers (invokeAfterMsg, invokeAfterMsgs,
// invokeWithoutUpdates, invokeWithLayer, whose ids and layout no layer
// has changed): the query inside is in that layer. gotd wraps every call
// in invokeWithLayer (and invokeWithoutUpdates), so a gotd client that
// sends another layer's bytes wraps them once more.
func peekLayer(body []byte) (int, bool) {
	b := bin.Buffer{Buf: body}
	layer, found := 0, false
	for {
		id, err := b.ID()
		if err != nil {
			return layer, found
		}
		switch id {
		case tg.InvokeWithLayerRequestTypeID:
			l, err := b.Int()
			if err != nil {
				return layer, found
			}
			layer, found = l, true
		case tg.InvokeWithoutUpdatesRequestTypeID:
		case tg.InvokeAfterMsgRequestTypeID:
			if _, err := b.Long(); err != nil {
				return layer, found
			}
		case tg.InvokeAfterMsgsRequestTypeID:
			n, err := b.VectorHeader()
			if err != nil || n > b.Len()/8 {
				return layer, found
			}
			b.Skip(8 * n)
		default:
			return layer, found
		}
	}
}

// conv returns the converter for an auth key, nil for native clients.
func (l *layerState) conv(key [8]byte) *layerConv {
	l.mu.RLock()
	layer, ok := l.byKey[key]
	c := l.convs[layer]
	l.mu.RUnlock()
	if !ok || layer == NativeLayer {
		return nil
	}
	return c
}

// request notes the layer a request declares and, for a client of another
// layer, rewrites its body into the native layer. The error is the RPC
// error to answer instead.
func (l *layerState) request(req *tgtest.Request) *tgerr.Error {
	key := req.Session.AuthKey.ID
	declared, ok := peekLayer(req.Buf.Buf)
	l.mu.RLock()
	layer, known := l.byKey[key]
	l.mu.RUnlock()
	if ok && (!known || declared != layer) {
		layer, known = declared, true
		if err := l.set(key, layer); err != nil {
			return err
		}
	}
	if !known || layer == NativeLayer {
		return nil
	}
	l.mu.RLock()
	c := l.convs[layer]
	l.mu.RUnlock()
	if c == nil {
		return errLayerInvalid
	}
	out, err := c.requestToNative(req.Buf.Buf)
	if err != nil {
		return err
	}
	req.Buf = &bin.Buffer{Buf: out}
	return nil
}

// set records a key's layer, preparing its converter; a layer without a
// schema is logged once (naming the layer) and refused.
func (l *layerState) set(key [8]byte, layer int) *tgerr.Error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byKey[key] = layer
	if layer == NativeLayer || l.convs[layer] != nil {
		return nil
	}
	c, err := newLayerConv(layer)
	if err != nil {
		if !l.logged[layer] {
			l.logged[layer] = true
			l.log.Warn("Client API layer cannot be served: its calls get 400 CONNECTION_LAYER_INVALID",
				zap.Int("layer", layer), zap.Ints("served", Layers()), zap.Error(err))
		}
		return errLayerInvalid
	}
	l.convs[layer] = c
	return nil
}

func newLayerConv(layer int) (*layerConv, error) {
	set, err := tlschema.Embedded()
	if err != nil {
		return nil, err
	}
	client, err := set.Schema(layer)
	if err != nil {
		return nil, err
	}
	native, err := set.Schema(NativeLayer)
	if err != nil {
		return nil, err
	}
	return &layerConv{
		layer: layer, client: client, native: native,
		up:   tlschema.Translator{From: client, To: native},
		down: tlschema.Translator{From: native, To: client, Nearest: true},
	}, nil
}

// requestToNative decodes a client-layer call and encodes it in the
// native layer. Failures are the RPC errors Telegram uses for them.
func (c *layerConv) requestToNative(body []byte) ([]byte, *tgerr.Error) {
	obj, err := c.client.DecodeCall(body)
	if err != nil {
		return nil, decodeRPCError(err)
	}
	nat, err := c.up.Call(obj)
	if err != nil {
		var nc *tlschema.NoCounterpartError
		if errors.As(err, &nc) && nc.Function {
			return nil, tgerr.New(400, "INPUT_METHOD_INVALID_"+strconv.FormatUint(uint64(nc.ID), 10))
		}
		if errors.As(err, &nc) {
			return nil, tgerr.New(400, "INPUT_CONSTRUCTOR_INVALID")
		}
		return nil, errBadRequest
	}
	var out bin.Buffer
	if err := c.native.EncodeCall(&out, nat); err != nil {
		return nil, errBadRequest
	}
	return out.Buf, nil
}

func decodeRPCError(err error) *tgerr.Error {
	var unknown *tlschema.UnknownIDError
	switch {
	case errors.As(err, &unknown) && unknown.Function:
		return tgerr.New(400, "INPUT_METHOD_INVALID_"+strconv.FormatUint(uint64(unknown.ID), 10))
	case errors.As(err, &unknown):
		return tgerr.New(400, "INPUT_CONSTRUCTOR_INVALID")
	}
	return errBadRequest
}

// toClient encodes a native object and translates it into the client's
// layer.
func (c *layerConv) toClient(obj bin.Encoder) ([]byte, error) {
	var b bin.Buffer
	if err := obj.Encode(&b); err != nil {
		return nil, err
	}
	dec, err := c.native.DecodeBoxed(b.Buf)
	if err != nil {
		return nil, err
	}
	out, err := c.down.Boxed(dec)
	if err != nil {
		return nil, err
	}
	b.Reset()
	if err := c.client.EncodeBoxed(&b, out); err != nil {
		return nil, err
	}
	return b.Buf, nil
}

// send answers a request in the client's layer. A result that cannot be
// translated is logged and answered with 500 INTERNAL, never dropped.
func (c *layerConv) send(s *Server, srv *tgtest.Server, req *tgtest.Request, result bin.Encoder) error {
	var body bin.Buffer
	var err error
	switch r := result.(type) {
	case boolResult:
		return srv.SendBool(req, bool(r)) // boolTrue and boolFalse never changed
	case vector:
		body.PutVectorHeader(len(r))
		for _, e := range r {
			var el []byte
			if el, err = c.toClient(e); err != nil {
				break
			}
			body.Put(el)
		}
	default:
		var raw []byte
		if raw, err = c.toClient(r); err == nil {
			body.Put(raw)
		}
	}
	if err != nil {
		s.log.Warn("Answer cannot be translated to the client's layer", zap.Int("layer", c.layer),
			zap.String("type", fmt.Sprintf("%T", result)), zap.Error(err))
		return srv.SendErr(req, tgerr.New(500, "INTERNAL"))
	}
	return srv.SendResult(req, rawObject(body.Buf))
}

// push returns an update for one session, in its layer; false when it
// cannot be translated (logged: the session misses the push).
func (l *layerState) push(s *Server, key [8]byte, upd tg.UpdatesClass) (bin.Encoder, bool) {
	c := l.conv(key)
	if c == nil {
		return upd, true
	}
	raw, err := c.toClient(upd)
	if err != nil {
		s.log.Warn("Update cannot be translated to the client's layer", zap.Int("layer", c.layer), zap.Error(err))
		return nil, false
	}
	return rawObject(raw), true
}

// rawObject is an object already encoded.
type rawObject []byte

func (r rawObject) Encode(b *bin.Buffer) error { b.Put(r); return nil }
