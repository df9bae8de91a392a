"""Forward methods that the `fused` technique binds onto a Llama model's module instances.

Each mirrors the transformers 5.x Llama forward it replaces (modeling_llama.py: LlamaRMSNorm,
LlamaMLP, LlamaAttention, LlamaForCausalLM) and changes only the maths it fuses. They are bound
with types.MethodType onto single instances, so other models in the process (the unfused
reference in a test, a second run) keep the library's forward. Imported lazily by fused.py,
because importing effbench.kernels needs triton.
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.llama import modeling_llama as ml

from effbench.kernels.flce import fused_linear_cross_entropy
from effbench.kernels.rmsnorm import rmsnorm
from effbench.kernels.rope import rope
from effbench.kernels.swiglu import swiglu

IGNORE_INDEX = -100  # transformers' label for "no loss here" (ForCausalLMLoss default)


def rmsnorm_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    return rmsnorm(hidden_states, self.weight, self.variance_epsilon)


def mlp_forward(self, x: torch.Tensor) -> torch.Tensor:
    # gate/up are fresh matmul outputs that nothing else keeps, so backward may overwrite them.
    return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x), in_place=self._fused_swiglu_in_place))


def attention_forward(
    self, hidden_states, position_embeddings=None, attention_mask=None, past_key_values=None, **kwargs
):
    """LlamaAttention.forward with apply_rotary_pos_emb replaced by the rope kernel."""
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, self.head_dim)
    query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

    cos, sin = position_embeddings
    query_states, key_states = rope(query_states, key_states, cos, sin)

    if past_key_values is not None:
        key_states, value_states = past_key_values.update(key_states, value_states, self.layer_idx)

    # The same attention dispatch as the library (eager / sdpa / flash per config).
    attention_interface = ml.ALL_ATTENTION_FUNCTIONS.get_interface(
        self.config._attn_implementation, ml.eager_attention_forward
    )
    attn_output, attn_weights = attention_interface(
        self,
        query_states,
        key_states,
        value_states,
        attention_mask,
        dropout=0.0 if not self.training else self.attention_dropout,
        scaling=self.scaling,
        **kwargs,
    )
    attn_output = attn_output.reshape(*input_shape, -1).contiguous()
    return self.o_proj(attn_output), attn_weights


def causal_lm_forward(
    self,
    input_ids=None,
    attention_mask=None,
    position_ids=None,
    past_key_values=None,
    inputs_embeds=None,
    labels=None,
    use_cache=None,
    logits_to_keep=0,
    **kwargs,
):
    """With labels: loss by fused linear cross-entropy over the hidden states, logits=None.
    Without labels: the library's own forward (inference is unchanged)."""
    if labels is None:
        return self._fused_orig_forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )
    num_items = kwargs.pop("num_items_in_batch", None)
    shift_labels = kwargs.pop("shift_labels", None)
    return_dict = kwargs.pop("return_dict", None)
    outputs = self.model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=past_key_values,
        inputs_embeds=inputs_embeds,
        use_cache=use_cache,
        **kwargs,
    )
    hidden = outputs.last_hidden_state
    if shift_labels is None:  # token t predicts label t+1, as ForCausalLMLoss shifts them
        shift_labels = torch.nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    shift_labels = shift_labels.to(hidden.device)
    if num_items is None:
        loss = fused_linear_cross_entropy(hidden, self.lm_head.weight, shift_labels, IGNORE_INDEX)
    else:  # transformers' gradient-accumulation convention: sum / items in the whole batch
        loss = (
            fused_linear_cross_entropy(hidden, self.lm_head.weight, shift_labels, IGNORE_INDEX, reduction="sum")
            / num_items
        )
    out = CausalLMOutputWithPast(
        loss=loss,
        logits=None,
        past_key_values=outputs.past_key_values,
        hidden_states=outputs.hidden_states,
        attentions=outputs.attentions,
    )
    if return_dict is False:
        return out.to_tuple()
    return out
