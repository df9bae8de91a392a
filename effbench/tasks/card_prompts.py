"""The SmolLM2 model card's formulation of HellaSwag, ARC and PIQA, as lm-eval `process_docs` functions.

The card's numbers come from lighteval's cloze formulation (CF), zero-shot: the model scores each
answer as a continuation, and the prediction is the answer with the highest log-likelihood divided
by its length in characters (lighteval's LogProbCharNorm, leading space included: lm-eval's
`acc_norm` over these choices is the same rule). This module is effbench's own reading of those
templates (lighteval is not installed here): each doc becomes {query, choices, gold}, with the
choices carrying their leading space (the YAML sets `target_delimiter: ""`).

- ARC and PIQA (lighteval's multiple-choice template, CF): "Question: <question>\\nAnswer:" with
  " <answer>" per choice; question and answers stripped, first letter capitalised.
- HellaSwag (lighteval's hellaswag template, CF): "<Activity label>:\\n<ctx_a> <ctx_b>" with
  WikiHow artefacts removed (" [title]" -> ". ", bracketed tags dropped, doubled spaces and dots
  collapsed), ctx_b capitalised after a sentence end and lower-cased otherwise; the endings cleaned
  the same way, each " <ending>", capitalised only where the context ends a sentence.
"""

from __future__ import annotations

import re

SENTENCE_END = (".", "?", "!", ":", ";")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def capitalize(s: str) -> str:
    return s[:1].upper() + s[1:]


def decapitalize(s: str) -> str:
    return s[:1].lower() + s[1:]


def clean(text: str) -> str:
    """HellaSwag's WikiHow artefacts removed, as lighteval's preprocessing does."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    text = re.sub(r"\.\.+", ".", text)
    text = re.sub(r" {2,}", " ", text)
    return text.strip()


def follows(prefix: str, text: str) -> str:
    """`text` capitalised after a sentence end (or at the start), else lower-cased."""
    if not prefix or prefix.endswith("\n") or prefix.rstrip().endswith(SENTENCE_END):
        return capitalize(text)
    return decapitalize(text)


def _mcq(question: str, answers: list[str], gold: int) -> dict:
    return {
        "query": f"Question: {capitalize(question.strip())}\nAnswer:",
        "choices": [" " + capitalize(str(a).strip()) for a in answers],
        "gold": gold,
    }


def arc_doc(doc: dict) -> dict:
    key = doc["answerKey"].strip()
    gold = int(key) - 1 if key.isdigit() else LETTERS.index(key)
    return _mcq(doc["question"], list(doc["choices"]["text"]), gold)


def piqa_doc(doc: dict) -> dict:
    return _mcq(doc["goal"], [doc["sol1"], doc["sol2"]], int(doc["label"]))


def hellaswag_doc(doc: dict) -> dict:
    ctx = capitalize(clean(doc["ctx_a"]))
    ctx_b = clean(doc.get("ctx_b") or "")
    if ctx_b:
        ctx = f"{ctx.rstrip()} {follows(ctx, ctx_b)}"
    label = doc.get("activity_label") or ""
    context = (f"{capitalize(label.strip())}:\n" if label.strip() else "") + ctx
    endings = [clean(e) for e in doc["endings"]]
    return {"query": context, "choices": [" " + follows(context, e) for e in endings], "gold": int(doc["label"])}


def _mapper(fn):
    def process_docs(dataset):
        return dataset.map(fn, remove_columns=list(dataset.column_names))

    return process_docs


# The names the `_card` YAMLs name (effbench.tasks.public.task_yaml): one per base task.
hellaswag = _mapper(hellaswag_doc)
arc_easy = _mapper(arc_doc)
arc_challenge = _mapper(arc_doc)
piqa = _mapper(piqa_doc)
