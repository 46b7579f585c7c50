"""Error messages in the request's language: every refusal code has its sentence, shapes kept."""

from __future__ import annotations

import importlib
import pkgutil
import re

from hypothesis import given
from hypothesis import strategies as st

import erp_core
from erp_core.errors import ConflictError
from erp_core.web.errors_i18n import (
    CONFLICTS,
    VALIDATION,
    conflict_detail,
    message_for,
    translate_validation,
    validation_message,
)

CJK = re.compile(r"[\u4e00-\u9fff]")


def _conflict_codes() -> set[str]:
    """The ``code`` of every ConflictError subclass of every ERP domain."""
    for module in pkgutil.walk_packages(erp_core.__path__, "erp_core."):
        if module.name.endswith(".errors"):
            importlib.import_module(module.name)
    found: set[str] = set()
    todo: list[type[ConflictError]] = [ConflictError]
    while todo:
        cls = todo.pop()
        found.add(cls.code)
        todo.extend(cls.__subclasses__())
    return found


def test_every_refusal_code_of_the_erp_has_a_sentence_in_both_languages() -> None:
    codes = _conflict_codes()
    assert {"history_locked", "in_use", "retired", "release_evidence"} <= codes
    assert codes - set(CONFLICTS) == set(), "add the new code's sentence to CONFLICTS"
    for code in codes:
        assert message_for(code, "en").startswith("Refused")
        assert CJK.search(message_for(code, "zh_CN")), code


def test_the_same_refusal_in_english_and_chinese() -> None:
    stated = "item 7 has lots (3, 4); making it non-implantable would shorten the retention"
    assert conflict_detail("history_locked", stated, "en") == stated
    chinese = conflict_detail("history_locked", stated, "zh_CN")
    assert "已记录历史" in chinese
    assert stated in chinese  # the particulars are kept, as data
    # an unknown code still gets a sentence a person can read
    assert CJK.search(conflict_detail("something_new", stated, "zh_CN"))


_error = st.fixed_dictionaries(
    {
        "type": st.sampled_from([*VALIDATION, "no_such_type"]),
        "loc": st.lists(st.one_of(st.text(max_size=8), st.integers(0, 9)), max_size=3),
        "msg": st.text(max_size=30),
        "input": st.one_of(st.none(), st.text(max_size=10), st.integers()),
    },
    optional={"ctx": st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)},
)


@given(st.lists(_error, max_size=5))
def test_validation_items_keep_their_shape_and_only_msg_changes(errors: list[dict]) -> None:  # type: ignore[type-arg]
    assert translate_validation(errors, "en") == errors
    chinese = translate_validation(errors, "zh_CN")
    assert len(chinese) == len(errors)
    for before, after in zip(errors, chinese, strict=True):
        assert {k: v for k, v in after.items() if k != "msg"} == {
            k: v for k, v in before.items() if k != "msg"
        }
        assert after["msg"].startswith(validation_message(before["type"], "zh_CN"))
        assert before["msg"] in after["msg"]
        assert CJK.search(after["msg"])
