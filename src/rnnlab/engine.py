"""The compiled engine: a replica stack's loss, gradient and rollout without autograd.

Training a stack is the same small computation thousands of times: forward through the
recurrent layers, a dense head, the MSE, and back. ``StackEngine`` runs it as a handful of
compiled kernel calls on numpy views of the stack's own flat parameter, and writes the
gradient straight into ``flat.grad``: no autograd graph, no per-step PyTorch dispatch. The
optimizer then updates ``flat`` in place (``training.CompiledAdam`` or ``training.PlainSGD``),
or, for plain SGD on many-to-one minibatches, ``sgd_epoch`` runs a whole epoch in one call.

Every numpy array here shares memory with a tensor of the stack, so an optimizer step or
a ``load_state_dict`` (both in place) is seen by the next call at no cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnlab import kernels
from rnnlab.recurrent import CELLS, full_lengths


@dataclass(frozen=True)
class Batch:
    """What a regime feeds one optimizer step, in the stack's layout.

    ``x`` (1|R, B, T, I) and ``target``: (B, T, O) when every step is predicted (many to
    many), (B, O) with ``last_only`` (the prediction after each row's last real step).
    ``lengths`` (B,) gives the real steps of each row of a padded batch (None: all T).
    """

    x: Tensor
    target: Tensor
    lengths: Tensor | None = None
    last_only: bool = False


@dataclass(frozen=True)
class Epoch:
    """An epoch's minibatches end to end, as ``StackEngine.sgd_epoch`` takes them: rows
    ``starts[s]:starts[s + 1]`` are minibatch s. Many to one, inputs shared by every replica:
    x (rows, T, I) padded, lengths (rows,) the real steps of each row, target (rows, O)."""

    x: np.ndarray
    lengths: np.ndarray
    target: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, batches: list[tuple[Tensor, Tensor, Tensor]]) -> Epoch:
        """From minibatches (x (B, T, I), lengths (B,), target (B, O)), x padded to the longest T
        (steps past every row's end are never computed, so the padding changes no number)."""
        xs, lengths, targets = zip(*batches)
        width = max(x.shape[1] for x in xs)
        x = torch.cat([torch.nn.functional.pad(x, (0, 0, 0, width - x.shape[1])) for x in xs])
        return cls(np.ascontiguousarray(x.numpy()), torch.cat(lengths).numpy().astype(np.int64),
                   np.ascontiguousarray(torch.cat(targets).numpy()), np.cumsum([0, *map(len, lengths)]))

    def steps(self) -> int:
        return len(self.starts) - 1


class StackEngine:
    """Loss and gradient of every replica of a stack in one pass, and its rollouts."""

    def __init__(self, stack):
        self.stack, self.cfg = stack, stack.cfg
        self.grad = torch.zeros_like(stack.flat)  # every element is rewritten by each step
        self.w = self._views(stack.flat.detach())
        self.g = self._views(self.grad)
        self.ptr = stack.flat.data_ptr()
        if self.cfg.kind != "mlp":  # the weights and their gradients as the recurrent kernels take them
            self.params, self.grads = self._stack_arrays(self.w), self._stack_arrays(self.g)
            self._replica_of = stack._replica_index().numpy()
            self.code = CELLS[self.cfg.kind].code
        self._zero_states: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _views(self, flat: Tensor) -> dict[str, np.ndarray]:
        chunks = flat.split(self.stack._sizes)
        R = self.stack.replicas
        return {n: c.view(R, *s).numpy() for n, c, s in zip(self.stack.names, chunks, self.stack.shapes)}

    # -- recurrent layers -------------------------------------------------------------------

    def _layer_weights(self, views: dict[str, np.ndarray], layer: int) -> tuple[np.ndarray, ...]:
        return tuple(views[f"rnn.{k}_l{layer}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _stack_arrays(self, views: dict[str, np.ndarray]) -> tuple:
        """The layers' weights (weight_ih, weight_hh, bias_ih, bias_hh: each a tuple over the
        layers) and the head's, as the kernels take them."""
        layers = [self._layer_weights(views, layer) for layer in range(self.cfg.num_layers)]
        return (tuple(tuple(w[k] for w in layers) for k in range(4)), (views["head.weight"], views["head.bias"]))

    def _state_by_layer(self, state, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(R, L, B, H) state, an (h, c) pair, or None (zeros) -> (L, R, B, H) h and c (c zero-width
        without a cell state), never the caller's own memory. The zero state is shared between
        calls: a kernel that writes into its state (the rollout) gets a copy."""
        if state is None:  # the kernels only read h0 and c0: one zero state per batch size serves every call
            if batch not in self._zero_states:
                self._zero_states[batch] = self._state_by_layer(self.stack.initial_state(batch), batch)
            return self._zero_states[batch]
        h, c = state if isinstance(state, tuple) else (state, None)
        h = h.detach().numpy().transpose(1, 0, 2, 3).copy()
        c = np.zeros((*h.shape[:3], 0), h.dtype) if c is None else c.detach().numpy().transpose(1, 0, 2, 3).copy()
        return h, c

    def _recurrent_step(self, batch: Batch, state) -> tuple[np.ndarray, np.ndarray, object]:
        x = np.ascontiguousarray(batch.x.numpy())
        R, B, T = self.stack.replicas, x.shape[1], x.shape[2]
        lengths = full_lengths(B, T) if batch.lengths is None else np.asarray(batch.lengths.numpy(), dtype=np.int64)
        h0, c0 = self._state_by_layer(state, B)
        h_n, c_n = np.empty_like(h0), np.empty_like(c0)
        head = self.w["head.weight"]
        M = B if batch.last_only else B * T
        pred, loss = np.empty((R, M, head.shape[1]), head.dtype), np.empty(R)
        target = np.ascontiguousarray(batch.target.numpy().reshape(M, -1))
        kernels.recurrent_step(self.code, x, lengths, target, batch.last_only, (h0, c0), self.params,
                               self.grads, loss, pred, (h_n, c_n))
        final = torch.from_numpy(np.ascontiguousarray(h_n.transpose(1, 0, 2, 3)))  # (R, L, B, H)
        if CELLS[self.cfg.kind].has_cell_state:
            final = (final, torch.from_numpy(np.ascontiguousarray(c_n.transpose(1, 0, 2, 3))))
        return loss, pred, final

    # -- the MLP ----------------------------------------------------------------------------

    def _linears(self) -> list[str]:
        return [n.removesuffix(".weight") for n in self.stack.names if n.endswith(".weight")]

    def _mlp_forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Activations of every layer, the input first: (R|1, M, I) ... (R, M, O)."""
        linears, acts = self._linears(), [x]
        for k, name in enumerate(linears):
            w = self.w[f"{name}.weight"]
            y = np.empty((self.stack.replicas, x.shape[1], w.shape[1]), w.dtype)
            kernels.dense_forward(acts[-1], w, self.w[f"{name}.bias"], k < len(linears) - 1, y)
            acts.append(y)
        return acts

    def _mlp_step(self, batch: Batch) -> tuple[np.ndarray, np.ndarray, None]:
        x = batch.x.numpy()
        if batch.last_only:
            x = x[:, :, -1]                                                   # the MLP has no memory
        acts = self._mlp_forward(np.ascontiguousarray(x.reshape(x.shape[0], -1, x.shape[-1])))
        pred = acts[-1]
        target = batch.target.numpy().reshape(pred.shape[1], -1)
        loss, d = np.empty(self.stack.replicas), np.empty_like(pred)
        kernels.mse(pred, target, loss, d)
        linears = self._linears()
        for k in reversed(range(len(linears))):
            name, inputs = linears[k], acts[k]
            d_in = np.empty((d.shape[0], d.shape[1], inputs.shape[2] if k else 0), d.dtype)
            kernels.dense_backward(inputs, self.w[f"{name}.weight"], acts[k + 1], k < len(linears) - 1, d, d_in,
                                   self.g[f"{name}.weight"], self.g[f"{name}.bias"])
            d = d_in
        return loss, pred, None

    # -- the interface ------------------------------------------------------------------------

    def loss_and_grad(self, batch: Batch, state=None) -> tuple[Tensor, Tensor, object]:
        """Per-replica MSE (R,), the predictions, and the final state; the gradient of the
        summed loss is in ``stack.flat.grad`` afterwards (overwritten, not accumulated)."""
        if self.cfg.kind == "mlp":
            loss, pred, final = self._mlp_step(batch)
        else:
            loss, pred, final = self._recurrent_step(batch, state)
        self.stack.flat.grad = self.grad
        return torch.from_numpy(loss).to(self.grad.dtype), torch.from_numpy(pred), final

    def sgd_epoch(self, epoch: Epoch, lr: float) -> tuple[Tensor, Tensor, Tensor]:
        """Every minibatch of ``epoch``, each a ``loss_and_grad`` from a zero state followed by
        plain SGD on ``stack.flat`` (``PlainSGD.step``'s numbers), in one kernel call (recurrent
        stacks).

        Returns the per-step losses (S, R) and the largest gradient norm of each replica (R,), in
        the stack's dtype as ``loss_and_grad`` and ``replica_grad_norms`` give them, and every
        prediction (R, rows, O)."""
        R, dtype = self.stack.replicas, self.w["head.weight"].dtype
        losses = np.empty((epoch.steps(), R), dtype)
        preds = np.empty((R, len(epoch.lengths), self.w["head.weight"].shape[1]), dtype)
        grad_norm = np.empty(R)
        kernels.sgd_epoch(self.code, (epoch.x, epoch.lengths, epoch.target, epoch.starts),
                          self.params, self.grads, self.stack.flat.detach().numpy(), self.grad.numpy(),
                          self._replica_of, lr, losses, preds, grad_norm)
        self.stack.flat.grad = self.grad  # the last step's gradient, as after loss_and_grad
        return torch.from_numpy(losses), torch.from_numpy(preds), torch.from_numpy(grad_norm).to(self.grad.dtype)

    def last_outputs(self, x: Tensor, lengths: Tensor) -> Tensor:
        """The top layer's hidden state after each row's last real step, (R, B, H), from x
        (1|R, B, T, I): the forward pass alone, no step past a row's end computed.

        In chunks of rows small enough for the kernels' per-lane weight copies (``kernels.LANES``,
        a third faster here than the broadcast layout a larger batch gets); in the forward pass
        the layout changes no number. Wide layers (``kernels.BLAS``) take every row at once."""
        x, lengths = np.ascontiguousarray(x.numpy()), np.asarray(lengths.numpy(), dtype=np.int64)
        layers, _ = self.params
        G, K = layers[1][0].shape[1], max(x.shape[3], self.cfg.hidden_size)   # weight_hh of layer 0: (R, G, H)
        rows = max(1, kernels.LANE_COPIES_UP_TO // (G * K * self.stack.replicas))
        if kernels.takes_blas(K, x.shape[1]):  # wide layers: BLAS's products, the larger the better
            rows = x.shape[1]
        return torch.from_numpy(np.concatenate([self._last_outputs(x[:, a : a + rows], lengths[a : a + rows])
                                                for a in range(0, x.shape[1], rows)], axis=1))

    def _last_outputs(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        R, B, T = self.stack.replicas, x.shape[1], x.shape[2]
        h0, c0 = self._state_by_layer(None, B)
        h_n, c_n = np.empty_like(h0[0]), np.empty_like(c0[0])
        tape = np.empty((R, B, T, kernels.tape_width(self.code, self.cfg.hidden_size)), h0.dtype)
        inputs = np.ascontiguousarray(x)
        for layer, weights in enumerate(zip(*self.params[0])):
            out = np.empty((R, B, T, self.cfg.hidden_size), h0.dtype)
            kernels.sequence_forward(self.code, inputs, lengths, (h0[layer], c0[layer]),
                                     tuple(weights), out, tape, (h_n, c_n))
            inputs = out
        return inputs[:, np.arange(B), lengths - 1]

    def sampled_inputs(self, x: Tensor, feed: np.ndarray, state) -> tuple[Tensor, Tensor]:
        """Scheduled sampling: the inputs a window is trained on when step t > 0 reads the model's
        own prediction from step t - 1 wherever ``feed`` (R, B, T) is true, in one kernel call for
        every replica -> (inputs (R, B, T, I), predictions (R, B, T, O)), from x (1|R, B, T, I)
        and ``state``, which is left as it was."""
        x_ = np.ascontiguousarray(x.numpy())
        R, B, T, I = self.stack.replicas, x_.shape[1], x_.shape[2], x_.shape[3]
        linears = self._linears()
        outputs = self.w[f"{linears[-1]}.weight"].shape[1]
        if outputs != I:
            raise ValueError(f"feeding predictions back needs as many outputs as inputs, got {outputs} and {I}")
        inputs = np.empty((R, B, T, I), x_.dtype)
        preds = np.empty((R, B, T, outputs), x_.dtype)
        feed = np.ascontiguousarray(feed, dtype=np.bool_)
        if self.cfg.kind == "mlp":
            kernels.mlp_sampled_inputs(x_, feed, tuple(self.w[f"{n}.weight"] for n in linears),
                                       tuple(self.w[f"{n}.bias"] for n in linears), inputs, preds)
        else:
            h0, c0 = self._state_by_layer(state, B)  # only read by the kernel
            kernels.sampled_inputs(self.code, x_, feed, (h0, c0), self.params, inputs, preds)
        return torch.from_numpy(inputs), torch.from_numpy(preds)

    def rollout(self, x: Tensor, state, steps: int, gates: bool = False):
        """Feed each output back as the next input: x (1|R, B, 1, I) -> (R, B, steps, O), in
        one kernel call; with ``gates`` also the last layer's gates {name: (R, B, steps, H)}."""
        R = self.stack.replicas
        # (R, B, I), always a writable copy: a read-only view (one replica) would be another signature to compile
        x0 = np.broadcast_to(x.numpy()[:, :, 0], (R, x.shape[1], x.shape[3])).copy()
        B, linears = x0.shape[1], self._linears()
        out_width = self.w[f"{linears[-1]}.weight"].shape[1]
        preds = np.empty((R, B, steps, out_width), x0.dtype)
        if self.cfg.kind == "mlp":
            weights = tuple(self.w[f"{n}.weight"] for n in linears)
            kernels.mlp_rollout(x0, weights, tuple(self.w[f"{n}.bias"] for n in linears), preds)
            return (torch.from_numpy(preds), {}) if gates else torch.from_numpy(preds)
        cell = CELLS[self.cfg.kind]
        h, c = (a.copy() for a in self._state_by_layer(state, B))  # the rollout moves its state in place
        tape = np.empty((R, B, steps, kernels.tape_width(cell.code, self.cfg.hidden_size)), x0.dtype)
        kernels.rollout(cell.code, x0, (h, c), self.params, preds, tape)
        if not gates:
            return torch.from_numpy(preds)
        return torch.from_numpy(preds), cell.gate_view(torch.from_numpy(tape))

