"""`instrument plan lint`: findings as `file:line: CODE message`, exit 0 clean, 1 findings, 2 usage."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from instrument.plan import lint
from instrument.plan._cli import main
from instrument.plan._lint import is_personal

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(120)

EVENTS = """\
from instrument import EventName


class Events(EventName):
    ORDER_PLACED = "Order Placed"
    ORDER_SHIPPED = "Order Shipped"
    ORDER_REFUNDED = "Order Refunded"
"""

ORDERS = '''\
from instrument import Identify, Track
from lintshop.events import Events


class OrderPlaced(Track, event=Events.ORDER_PLACED):
    """An order was placed."""

    total: float
    orderId: str
    billing_email: str


class OrderShipped(Track, event=Events.ORDER_SHIPPED):
    total: int
    order_id: str


class Customer(Identify):
    """Who buys: personal data belongs here."""

    email: str
'''

REFUNDS = '''\
from instrument import Track
from lintshop.events import Events


class OrderRefunded(Track, event=Events.ORDER_REFUNDED):
    """An order was refunded."""

    amount: float


class OrderRefundedAgain(Track, event=Events.ORDER_REFUNDED):
    """The same event declared twice."""

    amount: float
'''


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package with submodules, importable from the working directory (as the CLI finds it)."""
    package = tmp_path / "lintshop"
    package.mkdir()
    (package / "__init__.py").write_text('"""A shop."""\n')
    (package / "events.py").write_text(EVENTS)
    (package / "orders.py").write_text(ORDERS)
    (package / "refunds.py").write_text(REFUNDS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("lintshop")]:
        monkeypatch.delitem(sys.modules, name)
    return tmp_path


EXPECTED = [
    "lintshop/orders.py:8: IN004 property 'total' has different types: integer in OrderShipped; number in OrderPlaced",
    "lintshop/orders.py:9: IN001 OrderPlaced.orderId: key 'orderId' is not snake_case",
    "lintshop/orders.py:10: IN005 OrderPlaced.billing_email: 'billing_email' looks like personal data in a track "
    "property; send it as an Identify trait, or acknowledge it with __personal_data__ = {'billing_email'}",
    "lintshop/orders.py:13: IN006 OrderShipped has no docstring (the plan's description)",
    "lintshop/orders.py:15: IN003 names differ only in case or spacing: 'orderId', 'order_id'",
    "lintshop/refunds.py:11: IN002 event 'Order Refunded' is declared by OrderRefunded (lintshop/refunds.py:5), "
    "OrderRefundedAgain (lintshop/refunds.py:11)",
]


def test_lint_walks_submodules_and_reports_each_finding_at_its_line(shop: Path) -> None:
    assert [str(f) for f in lint("lintshop")] == EXPECTED


def test_lint_cli_prints_findings_and_exits_1(shop: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "instrument", "plan", "lint", "lintshop"],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [*EXPECTED, "6 finding(s)"]


def test_lint_json_and_ignore(shop: Path) -> None:
    out = io.StringIO()
    codes = ["IN001", "IN002", "IN003", "IN004", "IN005"]
    argv = ["plan", "lint", "lintshop", "--json", *[f"--ignore={c}" for c in codes]]
    assert main(argv, stdout=out) == 1
    [finding] = json.loads(out.getvalue())["findings"]
    assert finding == {
        "file": "lintshop/orders.py",
        "line": 13,
        "code": "IN006",
        "message": "OrderShipped has no docstring (the plan's description)",
    }
    assert main([*argv, "--ignore=IN006"], stdout=io.StringIO()) == 0


def test_a_clean_module_exits_0(shop: Path) -> None:
    (shop / "cleanshop.py").write_text(
        textwrap.dedent(
            '''
            from instrument import EventName, Track


            class Events(EventName):
                CART_VIEWED = "Cart Viewed"


            class CartViewed(Track, event=Events.CART_VIEWED):
                """A cart was viewed."""

                items: int
            '''
        )
    )
    out = io.StringIO()
    assert main(["plan", "lint", "cleanshop"], stdout=out) == 0
    assert out.getvalue() == "no findings\n"


def test_the_porter_example_is_clean_a_project_name_is_not_personal_data() -> None:
    # NewProject.name is the project's name: a bare "name" is not a person's.
    assert lint("examples.porter.analytics") == []


@pytest.mark.parametrize(
    ("key", "personal"),
    [
        ("userEmail", True),
        ("shipping_address", True),
        ("billingAddressLine1", True),
        ("emailAddress", True),
        ("first_name", True),
        ("customerName", True),
        ("phoneNumber", True),
        ("dateOfBirth", True),
        ("client_ip", True),
        ("IPAddress", True),
        ("zip-code", True),
        ("name", False),
        ("project_name", False),
        ("clusterName", False),
        ("email_verified", False),
        ("shipping_method", False),
        ("b64_build_logs", False),
    ],
)
def test_personal_data_is_recognised_in_any_casing_by_its_last_words(key: str, personal: bool) -> None:
    assert is_personal(key) is personal


PERSONAL = '''\
from instrument import EventName, Track


class Events(EventName):
    ORDER_PLACED = "Order Placed"
    ORDER_SHIPPED = "Order Shipped"
    ORDER_PACKED = "Order Packed"
    SUPPORT_CONTACTED = "Support Contacted"


class OrderBase(Track):
    """What every order event carries."""

    shipping_address: str


class OrderPlaced(OrderBase, event=Events.ORDER_PLACED):
    """An order was placed."""

    userEmail: str


class OrderShipped(OrderBase, event=Events.ORDER_SHIPPED):
    """An order was shipped."""


class OrderPacked(OrderBase, event=Events.ORDER_PACKED):
    """An order was packed."""


class SupportContacted(Track, event=Events.SUPPORT_CONTACTED):
    """The support team forwards the reply address to its ticketing tool, on purpose."""

    __personal_data__ = {"reply_email"}

    reply_email: str
    name: str
'''


def test_personal_data_is_reported_once_at_the_declaring_base_and_can_be_acknowledged_per_class(
    shop: Path,
) -> None:
    (shop / "personalshop.py").write_text(PERSONAL)
    findings = [str(f) for f in lint("personalshop") if f.code == "IN005"]
    assert findings == [
        "personalshop.py:14: IN005 OrderBase.shipping_address: 'shipping_address' looks like personal data in a "
        "track property; send it as an Identify trait, or acknowledge it with __personal_data__ = "
        "{'shipping_address'}",
        "personalshop.py:20: IN005 OrderPlaced.userEmail: 'userEmail' looks like personal data in a track "
        "property; send it as an Identify trait, or acknowledge it with __personal_data__ = {'userEmail'}",
    ]


def test_an_acknowledgement_on_a_base_covers_its_subclasses(shop: Path) -> None:
    source = PERSONAL.replace(
        '    """What every order event carries."""\n',
        '    """What every order event carries."""\n\n    __personal_data__ = frozenset({"shipping_address"})\n',
    )
    (shop / "ackshop.py").write_text(source)
    assert [f.message.split(":")[0] for f in lint("ackshop") if f.code == "IN005"] == ["OrderPlaced.userEmail"]


def test_an_acknowledgement_of_a_key_the_class_does_not_send_is_reported(shop: Path) -> None:
    source = PERSONAL.replace('__personal_data__ = {"reply_email"}', '__personal_data__ = {"reply_email", "replyMail"}')
    (shop / "staleack.py").write_text(source)
    [finding] = [f for f in lint("staleack") if f.message.startswith("SupportContacted")]
    assert str(finding) == (
        "staleack.py:31: IN005 SupportContacted: __personal_data__ names ['replyMail'], which it does not send"
    )
