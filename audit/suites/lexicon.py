"""The lexicon of a counterfactual suite: groups of one attribute (or of several at once, a cell
lexicon) with aligned surface forms, validated at load. ``audit.suites.schema`` holds the rest of
the suite schema.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ATTR_RE = r"^[a-z][a-z0-9_]*$"
# attributes the template expander sets on every item; templates and lexicons may not reuse them
RESERVED_ATTRIBUTES = ("axis", "group", "term", "pair_id", "form")


class Lexicon(BaseModel):
    """Groups of one attribute (axis), each with aligned surface forms.

    Forms are aligned by position across groups (``the woman``/``the man``, ``Mary``/``John``) so
    that the prompts built from form ``i`` of every group form one counterfactual set.
    ``form_kinds`` optionally labels each position (``noun``, ``name``); it becomes the item
    attribute ``form``.

    A *cell lexicon* sets several attributes at once (``attributes: [race, gender]``): each group
    key joins one value per attribute with ``.`` (``black.female``), for surface forms that signal
    them jointly (first names). It fills the template slot ``slot`` (required).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str | None = Field(None, pattern=ATTR_RE)
    attributes: list[str] = Field(default_factory=list)
    slot: str | None = Field(None, pattern=ATTR_RE)
    groups: dict[str, list[str]]
    form_kinds: list[str] = Field(default_factory=list)
    description: str | None = None
    source: str | None = None

    @field_validator("attribute")
    @classmethod
    def _not_reserved(cls, v: str | None) -> str | None:
        if v in RESERVED_ATTRIBUTES:
            raise ValueError(f"'{v}' is reserved (set by the expander: {', '.join(RESERVED_ATTRIBUTES)})")
        return v

    @field_validator("groups")
    @classmethod
    def _groups_ok(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not v:
            raise ValueError("the lexicon is empty: give at least two groups")
        if len(v) < 2:
            raise ValueError("a lexicon needs at least two groups to compare")
        lengths = {g: len(forms) for g, forms in v.items()}
        for g, forms in v.items():
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", g):
                raise ValueError(f"group name '{g}' must be letters, digits, '_', '.' or '-'")
            if not forms:
                raise ValueError(f"group '{g}' has no surface forms")
            if any(not isinstance(f, str) or not f.strip() for f in forms):
                raise ValueError(f"group '{g}' has an empty surface form")
            if len(set(forms)) != len(forms):
                raise ValueError(f"group '{g}' lists a surface form twice")
        if len(set(lengths.values())) != 1:
            raise ValueError(f"groups must have the same number of aligned forms, got {lengths}")
        return v

    @field_validator("attributes")
    @classmethod
    def _cell_attributes(cls, v: list[str]) -> list[str]:
        for a in v:
            if not re.match(ATTR_RE, a):
                raise ValueError(f"attribute name '{a}' must be lower_snake_case")
            if a in RESERVED_ATTRIBUTES:
                raise ValueError(f"'{a}' is reserved (set by the expander: {', '.join(RESERVED_ATTRIBUTES)})")
        if v and len(v) < 2:
            raise ValueError("'attributes' is for cell lexicons and needs two or more (else use 'attribute')")
        if len(set(v)) != len(v):
            raise ValueError("an attribute is listed twice")
        return v

    @model_validator(mode="after")
    def _kinds_aligned(self) -> Lexicon:
        if (self.attribute is None) == (not self.attributes):
            raise ValueError("give either 'attribute' (one axis) or 'attributes' (a cell lexicon), not both")
        if self.attributes:
            if self.slot is None:
                raise ValueError("a cell lexicon ('attributes') needs 'slot': the template slot its forms fill")
            for g in self.groups:
                parts = g.split(".")
                if len(parts) != len(self.attributes) or not all(parts):
                    raise ValueError(
                        f"group '{g}' must join one value per attribute ({', '.join(self.attributes)}) "
                        "with '.', e.g. 'black.female'"
                    )
        n_forms = len(next(iter(self.groups.values())))
        if self.form_kinds and len(self.form_kinds) != n_forms:
            raise ValueError(f"form_kinds has {len(self.form_kinds)} entries but each group has {n_forms} forms")
        return self

    @property
    def n_forms(self) -> int:
        return len(next(iter(self.groups.values())))

    @property
    def axes(self) -> list[str]:
        """The attributes it sets: ``[attribute]``, or a cell lexicon's ``attributes``."""
        return list(self.attributes) if self.attributes else [str(self.attribute)]

    @property
    def slot_name(self) -> str:
        """The template slot it fills besides ``{group}``: ``slot``, else its attribute."""
        return self.slot or str(self.attribute)

    def values_of(self, group: str) -> dict[str, str]:
        """Attribute values of one group: ``{"race": "black", "gender": "female"}``."""
        if not self.attributes:
            return {str(self.attribute): group}
        return dict(zip(self.attributes, group.split("."), strict=True))
