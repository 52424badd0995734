"""The mutation check's list still applies to the code (scripts/mutants.toml)."""
import pytest

from scripts.mutation_check import ROOT, load_mutants

MUTANTS = load_mutants()


def test_the_list_has_enough_mutants_of_the_kernel_core():
    files = {m.file for m in MUTANTS}
    assert {"redleaf_nb/kernel/heap.py", "redleaf_nb/kernel/proxy.py"} <= files
    assert len([m for m in MUTANTS if m.file in ("redleaf_nb/kernel/heap.py",
                                                 "redleaf_nb/kernel/proxy.py")]) >= 20
    assert any(m.named for m in MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_each_mutant_applies_exactly_once_and_names_existing_tests(mutant):
    text = (ROOT / mutant.file).read_text()
    mutated = mutant.apply(text)
    assert mutated != text
    compile(mutated, mutant.file, "exec")        # a mutant is a bug, not a syntax error
    for t in mutant.tests:
        assert (ROOT / t.split("::")[0]).is_file(), t


def test_a_snippet_that_moved_is_reported():
    m = MUTANTS[0]
    with pytest.raises(ValueError, match="occurs 0 times"):
        m.apply("")
