"Every exercise's checker: accepts its reference, calls stubs 'not answered yet', names each known mistake, never raises."
import contextlib, importlib, io, json, re
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from wscourse.exercises import EXERCISES, NOT_ANSWERED, exercise, progress

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ['03', '04', '05', '06', '07', '08', '09', '10']
IDS = sorted(EXERCISES)

def checked(ex, answer):
    "(passed, printed text) of ex.check(answer)."
    out = io.StringIO()
    with contextlib.redirect_stdout(out): passed = ex.check(answer)
    assert isinstance(passed, bool)
    return passed, out.getvalue()

def test_enough_exercises_in_every_lesson():
    assert len(EXERCISES) >= 24
    for lesson in LESSONS: assert sum(i.startswith(lesson + '.') for i in IDS) >= 2, lesson

@pytest.mark.parametrize('id', IDS)
def test_reference_passes(id):
    ex = exercise(id)
    passed, text = checked(ex, ex.reference)
    assert passed and text.startswith(f'✓ {id}: ') and len(text.strip()) > len(id) + 8, text

@pytest.mark.parametrize('id', IDS)
def test_stubs_are_not_answered_yet(id):
    ex = exercise(id)
    def raises_stub(*args): raise NotImplementedError
    def returns_nothing(*args): pass
    stubs = [None, raises_stub, returns_nothing] if ex.is_function else [None]
    for stub in stubs:
        passed, text = checked(ex, stub)
        assert not passed and NOT_ANSWERED in text and '✗' not in text, text

@pytest.mark.parametrize('id', IDS)
def test_each_mistake_gets_its_own_feedback(id):
    ex = exercise(id)
    assert ex.mistakes and set(ex.mistakes) == set(ex.feedback)
    assert len(set(ex.feedback.values())) == len(ex.feedback), 'each mistake has its own feedback'
    for name, wrong in ex.mistakes.items():
        passed, text = checked(ex, wrong)
        assert not passed and name in text and ex.feedback[name] in text, (name, text)

@pytest.mark.parametrize('id', IDS)
def test_function_exercises_have_an_edge_case_and_hint_and_solution(id):
    ex = exercise(id)
    assert ex.task and ex.hint_text and ex.why
    if ex.is_function:
        labels = [label for label, _ in ex.cases()]
        assert len(labels) >= 2 and any(l.startswith('edge case') for l in labels), labels
        assert f'def {ex.name}(' in ex.solution_text
    out = io.StringIO()
    with contextlib.redirect_stdout(out): ex.hint(); ex.solution()
    assert ex.hint_text in out.getvalue() and ex.solution_text.strip() in out.getvalue()

JUNK = [0, -1., float('nan'), 'abc', (), [1, 2], torch.zeros(0), torch.ones(3, 3), {'a': 1}, object(), True,
        lambda *a: 1 / 0, lambda *a: 'text', lambda *a: torch.ones(2), lambda: 1, lambda *a: (1, 2, 3), print]

@pytest.mark.parametrize('id', IDS)
def test_no_checker_raises_on_junk(id):
    "Other wrong answers get feedback (expected against given, or what kind of answer is wanted); nothing raises."
    ex = exercise(id)
    for junk in JUNK:
        passed, text = checked(ex, junk)
        assert not passed and (text.startswith(f'✗ {id}: ') or NOT_ANSWERED in text), (junk, text)
        if junk is not print: assert text.startswith(f'✗ {id}: '), (junk, text)   # print returns nothing: "not answered yet"

@settings(max_examples=60, deadline=None)
@given(st.sampled_from(IDS), st.one_of(st.floats(allow_nan=True), st.integers(), st.text(max_size=8),
                                     st.lists(st.floats(-1e3, 1e3), max_size=4)))
def test_no_checker_raises_on_any_value(id, value):
    passed, text = checked(exercise(id), value)
    assert text.strip()

def test_progress_lists_what_was_checked():
    first = IDS[0]
    checked(exercise(first), exercise(first).reference)
    solved = progress()
    assert first in solved[first[:2]] and f'✓ {first}' in repr(solved) and set(solved) == {i[:2] for i in IDS}
    assert list(progress(first[:2])) == [first[:2]]
    with pytest.raises(ValueError, match='lesson must be one of'): progress('3')

def test_unknown_id_is_refused_by_name():
    with pytest.raises(ValueError, match="id '99.9' is not an exercise"): exercise('99.9')

def notebook(lesson):
    (path,) = ROOT.glob(f'nbs/{lesson}_*.ipynb')
    return json.loads(path.read_text())['cells']

def assigned_names(source):
    "Names a cell binds at top level: def/class names and simple assignments."
    import ast
    try: tree = ast.parse(re.sub(r'^[%!].*$', '', source, flags=re.M))
    except SyntaxError: return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)): names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split('.')[0] for a in node.names}
    return names

@pytest.mark.parametrize('lesson', LESSONS)
def test_lesson_has_its_exercises_and_no_cell_overwrites_the_learners_answers(lesson):
    cells = notebook(lesson)
    sources = [''.join(c['source']) for c in cells]
    heading = [i for i, (c, s) in enumerate(zip(cells, sources)) if c['cell_type'] == 'markdown' and re.match(r'#+ Exercises', s)]
    assert len(heading) == 1, f'lesson {lesson} needs one Exercises heading'
    ids = [i for i in IDS if i.startswith(lesson + '.')]
    for id in ids:
        ex = exercise(id)
        checks = [k for k, (c, s) in enumerate(zip(cells, sources)) if c['cell_type'] == 'code'
                  and s.strip().rstrip(';') == f"exercise('{id}').check({ex.name})"]
        assert len(checks) == 1 and checks[0] > heading[0], f'{id}: one visible check cell after the heading'
        stub = checks[0] - 1
        assert ex.name in assigned_names(sources[stub]), f'{id}: the cell right above the check is the stub defining {ex.name}'
        assert f'{ex.name} = None' in sources[stub] or 'raise NotImplementedError' in sources[stub], f'{id}: the stub is shipped unanswered'
        assert not any(ex.name in getattr(importlib.import_module(f'wscourse.{m.stem}'), '__all__', [])
                       for m in (ROOT / 'wscourse').glob('[!_]*.py')), f'{id}: {ex.name} is a library name; a stub would shadow it'
        others = [k for k, s in enumerate(sources) if k != stub and cells[k]['cell_type'] == 'code' and ex.name in assigned_names(s)]
        assert not others, f'{id}: cells {others} of lesson {lesson} also bind {ex.name}, the learner\'s answer'

def test_inplace_exercises_refuse_a_copy():
    "An in-place exercise (e.g. 08.1) passes only when the answer changes its argument and returns it."
    inplace = [ex for ex in EXERCISES.values() if ex.inplace]
    assert inplace
    for ex in inplace:
        passed, text = checked(ex, lambda w, *rest: ex.reference(w.clone(), *rest))
        assert not passed and 'in place' in text, text

@pytest.mark.parametrize('lesson', LESSONS)
def test_shipped_stubs_run_and_are_not_answered_yet(lesson):
    "Each stub cell, run as shipped, gives an answer that the check calls 'not answered yet' (so a lesson never stops there)."
    cells = notebook(lesson)
    sources = [''.join(c['source']) for c in cells]
    for id in (i for i in IDS if i.startswith(lesson + '.')):
        ex = exercise(id)
        check_cell = next(k for k, s in enumerate(sources) if s.strip().rstrip(';') == f"exercise('{id}').check({ex.name})")
        namespace = {'torch': torch, 'math': __import__('math')}
        exec(sources[check_cell - 1], namespace)
        passed, text = checked(ex, namespace[ex.name])
        assert not passed and NOT_ANSWERED in text, text
