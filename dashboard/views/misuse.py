"""Misuse, both sides of safety: refusal of harmful requests and over-refusal of safe ones."""

from dashboard import sections

sections.topic_page(
    "misuse",
    "Misuse",
    "Both sides of safety. Harmful requests (Do-Not-Answer, HarmBench): the refusal rate, higher is "
    "better. XSTest (`over-refusal`): safe prompts that only look unsafe, where refusing is the "
    "error (benign refusal, lower is better), their unsafe contrasts, where complying is the error "
    "(harmful compliance, lower is better), and the balanced error of the two, which a model cannot "
    "lower by refusing everything or nothing. Meaningful for instruction-tuned models only; the "
    "refusal scorer's agreement with people is on the Scorer audit page and in the report.",
)
