package fakekernel

import (
	"encoding/json"
	"fmt"

	"github.com/go-zeromq/zmq4"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// request is one message received on shell, control or stdin, with where to answer it.
type request struct {
	msg     *jupyter.Message
	channel string
	socket  zmq4.Socket
}

// handler answers one message type.
type handler func(req *request)

// serve reads a ROUTER socket until the kernel stops, dispatching each verified message to its
// handler. A nil handler table only drains the socket (stdin: the fake kernel never asks for
// input).
func (k *Kernel) serve(channel string, socket zmq4.Socket, handlers map[string]handler) {
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		for {
			raw, err := socket.Recv()
			if k.stopping() {
				return
			}
			if err != nil {
				// zmq4 only fails a ROUTER's Recv when the socket is closed, which stop does.
				k.stop(fmt.Errorf("receiving on the %s channel: %w", channel, err), 0)
				return
			}
			msg, err := k.codec.Decode(raw.Frames)
			if err != nil {
				k.log.Warn("dropped a message", "channel", channel, "err", err.Error())
				continue
			}
			msg.Channel = channel
			if handlers == nil {
				k.log.Debug("ignored a message", "channel", channel, "msg_type", msg.Header.MsgType)
				continue
			}
			k.dispatch(&request{msg: msg, channel: channel, socket: socket}, handlers)
		}
	}()
}

// dispatch runs a request's handler between iopub status busy and idle, as ipykernel does
// for every request on shell and control (unknown ones included).
func (k *Kernel) dispatch(req *request, handlers map[string]handler) {
	parent := &req.msg.Header
	k.publish("status", map[string]string{"execution_state": "busy"}, parent)
	if h := handlers[req.msg.Header.MsgType]; h != nil {
		h(req)
	} else {
		k.log.Warn("unknown message type", "channel", req.channel, "msg_type", req.msg.Header.MsgType)
	}
	k.publish("status", map[string]string{"execution_state": "idle"}, parent)
}

// decode decodes a request's content into v, logging (and returning false) when it is not
// what the message type needs: a malformed request gets no reply, as in ipykernel.
func (k *Kernel) decode(req *request, v any) bool {
	if err := req.msg.DecodeContent(v); err != nil {
		k.log.Warn("dropped a malformed request", "channel", req.channel, "err", err.Error())
		return false
	}
	return true
}

// reply answers req on its own socket, to the identities it came from.
func (k *Kernel) reply(req *request, msgType string, content, metadata any) {
	m, err := jupyter.NewMessage(msgType, k.session, k.opts.Username, content, &req.msg.Header)
	if err != nil {
		k.log.Error("making a reply", "msg_type", msgType, "err", err.Error())
		return
	}
	if metadata != nil {
		if m.Metadata, err = json.Marshal(metadata); err != nil {
			k.log.Error("encoding a reply's metadata", "msg_type", msgType, "err", err.Error())
			return
		}
	}
	if len(req.msg.Identities) == 0 {
		// A ROUTER socket always prepends the peer's identity, so this does not happen.
		k.log.Warn("cannot reply to a request without a routing identity", "msg_type", msgType)
		return
	}
	m.Identities = req.msg.Identities
	k.send(req.socket, req.channel, m)
}

// publish sends a message on iopub with ipykernel's topic, kernel.<session>.<msg_type>.
// parent is nil for messages that answer nothing.
func (k *Kernel) publish(msgType string, content any, parent *jupyter.Header) {
	m, err := jupyter.NewMessage(msgType, k.session, k.opts.Username, content, parent)
	if err != nil {
		k.log.Error("making an iopub message", "msg_type", msgType, "err", err.Error())
		return
	}
	m.Identities = [][]byte{[]byte("kernel." + k.session + "." + msgType)}
	k.send(k.iopub, jupyter.ChannelIOPub, m)
}

func (k *Kernel) send(socket zmq4.Socket, channel string, m *jupyter.Message) {
	frames, err := k.codec.Encode(m)
	if err != nil {
		k.log.Error("encoding a message", "channel", channel, "msg_type", m.Header.MsgType, "err", err.Error())
		return
	}
	if err := socket.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		if k.stopping() {
			k.log.Debug("a message lost while stopping", "channel", channel, "msg_type", m.Header.MsgType)
			return
		}
		k.log.Warn("sending a message", "channel", channel, "msg_type", m.Header.MsgType, "err", err.Error())
	}
}
