"""Misuse, both sides of safety: refusal of harmful requests and over-refusal of safe ones, and
how both hold up under attack."""

from dashboard import attacks, data, sections, ui

sections.topic_page(
    "misuse",
    "Misuse",
    "Both sides of safety. Harmful requests (Do-Not-Answer, HarmBench, StrongREJECT): the refusal rate "
    "(any refusal, full or partial), higher is better. XSTest (`over-refusal`): safe prompts that only "
    "look unsafe, where refusing is the error (benign refusal, lower is better), their unsafe contrasts, "
    "where complying is the error (harmful compliance, lower is better), and the balanced error of the "
    "two, which a model cannot lower by refusing everything or nothing. Runs with `--attacks` add, per "
    "technique, attack success beside the share of answers that could not be read, the paired change "
    "against the plain prompt, over-refusal of the benign twins and hit@k. Meaningful for "
    "instruction-tuned models only; the refusal scorer's agreement with people is on the Scorer audit "
    "page and in the report.",
)
_run = ui.current_run()
for _suite in data.suites_of_kind(_run, "misuse"):
    attacks.attack_section(_run, _suite)
