"""Write the four import fixtures (Segment rules, Typewriter plan.json, Iglu schemas, rudder-cli YAML).

One table of 42 events (Segment's E-commerce, B2B SaaS and Video specs) written in each vendor's
format as its public documentation describes it, in the order and style ``instrument plan export``
writes (sorted keys, two-space JSON; lists by event name). Independent of instrument's code: the
round-trip test compares what import -> export gives with these files. Run it to regenerate them:
``python tests/plan_fixtures/make.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
IGLU_META = "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"
VENDOR = "com.acme"

Schema = dict[str, Any]

PROPS: dict[str, Schema] = {
    "product_id": {"type": "string", "description": "Database id of the product"},
    "sku": {"type": "string", "description": "Stock keeping unit"},
    "category": {"type": "string"},
    "name": {"type": "string", "description": "Name of the product"},
    "brand": {"type": "string"},
    "price": {"type": "number", "minimum": 0, "description": "Price in dollars"},
    "quantity": {"type": "integer", "minimum": 1},
    "coupon": {"type": ["string", "null"]},
    "position": {"type": "integer"},
    "url": {"type": "string", "format": "uri"},
    "imageURL": {"type": "string", "description": "Image of the product"},
    "order_id": {"type": "string"},
    "total": {"type": "number"},
    "currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]},
    "products": {"type": "array", "items": {"type": "object"}},
    "query": {"type": "string", "maxLength": 200},
    "list_id": {"type": "string"},
    "filters": {"type": "array", "items": {"type": "string"}},
    "promotion_id": {"type": "string"},
    "creative": {"type": "string"},
    "class": {"type": "string", "description": "A Python keyword as a key"},
    "checkout_id": {"type": "string", "format": "uuid"},
    "step": {"type": "integer", "enum": [1, 2, 3, 4]},
    "shipping_method": {"type": "string"},
    "payment_method": {"type": "string", "enum": ["card", "paypal", "invoice"]},
    "coupon_id": {"type": "string"},
    "reason": {"type": "string"},
    "wishlist_id": {"type": "string"},
    "share_via": {"type": "string", "enum": ["email", "sms", "link"]},
    "rating": {"type": "integer", "minimum": 1, "maximum": 5},
    "review_body": {"type": "string"},
    "is_gift": {"type": "boolean"},
    "ordered_at": {"type": "string", "format": "date-time"},
    "account_name": {"type": "string"},
    "user_id": {"type": "string", "description": "The user added or removed"},
    "role": {"type": "string", "enum": ["admin", "member", "viewer"]},
    "invitee email": {"type": "string", "format": "email"},
    "trial_start_date": {"type": "string", "format": "date"},
    "trial_end_date": {"type": "string", "format": "date"},
    "trial_plan_name": {"type": "string"},
    "method": {"type": "string", "enum": ["password", "google", "github"]},
    "session_id": {"type": "string"},
    "video_player": {"type": "string"},
    "position_seconds": {"type": "number", "minimum": 0},
    "total_length": {"type": "integer"},
    "livestream": {"type": "boolean"},
    "sound": {"type": "integer", "minimum": 0, "maximum": 100},
    "bitrate": {"type": ["integer", "number"]},
    "extra": {"description": "Anything the page adds"},
}

PRODUCT = ["product_id", "sku", "category", "name", "brand", "price", "quantity", "coupon", "position", "url"]
ORDER = ["order_id", "total", "currency", "products", "coupon", "is_gift"]
VIDEO = ["session_id", "video_player", "position_seconds", "total_length", "livestream", "sound", "bitrate"]

# (event, description, properties, required, version, labels)
EVENTS: list[tuple[str, str, list[str], list[str], int, dict[str, str] | None]] = [
    (
        "Account Added User",
        "A user was added to an account.",
        ["account_name", "user_id", "role"],
        ["user_id"],
        1,
        None,
    ),
    ("Account Created", "An account was created.", ["account_name"], ["account_name"], 1, {"team": "growth"}),
    ("Account Deleted", "An account was deleted.", ["account_name", "reason"], ["account_name"], 2, None),
    ("Account Removed User", "A user was removed from an account.", ["account_name", "user_id"], ["user_id"], 1, None),
    ("Cart Shared", "A shopper shared the cart.", ["share_via", "products"], ["share_via"], 1, None),
    ("Cart Viewed", "A shopper viewed the cart.", ["list_id", "products"], [], 1, None),
    (
        "Checkout Started",
        "A shopper started the checkout.",
        ["checkout_id", *ORDER],
        ["checkout_id", "order_id"],
        3,
        None,
    ),
    (
        "Checkout Step Completed",
        "A checkout step was completed.",
        ["checkout_id", "step", "shipping_method", "payment_method", "extra"],
        ["checkout_id", "step"],
        1,
        None,
    ),
    ("Checkout Step Viewed", "A checkout step was shown.", ["checkout_id", "step"], ["checkout_id", "step"], 1, None),
    ("Coupon Applied", "A coupon was applied.", ["order_id", "coupon_id", "coupon"], ["coupon_id"], 1, None),
    ("Coupon Denied", "A coupon was refused.", ["order_id", "coupon_id", "reason"], ["coupon_id", "reason"], 1, None),
    ("Coupon Entered", "A shopper entered a coupon.", ["order_id", "coupon_id"], ["coupon_id"], 1, None),
    ("Coupon Removed", "A coupon was removed.", ["order_id", "coupon_id"], ["coupon_id"], 1, None),
    (
        "Invite Sent",
        "A user invited someone to the account.",
        ["invitee email", "role"],
        ["invitee email"],
        1,
        {"team": "growth"},
    ),
    ("Order Cancelled", "An order was cancelled.", [*ORDER, "reason"], ["order_id"], 1, None),
    (
        "Order Completed",
        "An order was completed.",
        [*ORDER, "ordered_at"],
        ["order_id", "total", "currency", "ordered_at"],
        4,
        {"team": "checkout"},
    ),
    ("Order Refunded", "An order was refunded.", ["order_id", "total", "currency"], ["order_id"], 1, None),
    ("Order Updated", "An order was changed.", ORDER, ["order_id"], 1, None),
    (
        "Payment Info Entered",
        "Payment details were entered.",
        ["checkout_id", "order_id", "step", "payment_method"],
        ["checkout_id"],
        1,
        None,
    ),
    ("Product Added", "A product was added to the cart.", PRODUCT, ["product_id", "quantity"], 2, None),
    (
        "Product Added to Wishlist",
        "A product was added to a wishlist.",
        ["wishlist_id", *PRODUCT[:6]],
        ["wishlist_id", "product_id"],
        1,
        None,
    ),
    ("Product Clicked", "A product was clicked in a list.", [*PRODUCT, "imageURL"], ["product_id"], 1, None),
    (
        "Product List Filtered",
        "A product list was filtered.",
        ["list_id", "category", "filters", "products"],
        ["list_id"],
        1,
        None,
    ),
    ("Product List Viewed", "A product list was shown.", ["list_id", "category", "products"], ["list_id"], 1, None),
    ("Product Removed", "A product was removed from the cart.", PRODUCT, ["product_id"], 1, None),
    (
        "Product Removed from Wishlist",
        "A product was removed from a wishlist.",
        ["wishlist_id", "product_id"],
        ["wishlist_id", "product_id"],
        1,
        None,
    ),
    (
        "Product Reviewed",
        "A shopper reviewed a product.",
        ["product_id", "rating", "review_body"],
        ["product_id", "rating"],
        1,
        None,
    ),
    ("Product Shared", "A shopper shared a product.", ["product_id", "share_via", "class"], ["product_id"], 1, None),
    (
        "Product Viewed",
        "A product page was shown.",
        [*PRODUCT, "imageURL", "currency"],
        ["product_id"],
        2,
        {"team": "catalog"},
    ),
    ("Products Searched", "A shopper searched the catalog.", ["query"], ["query"], 1, None),
    (
        "Promotion Clicked",
        "A promotion was clicked.",
        ["promotion_id", "creative", "name", "position"],
        ["promotion_id"],
        1,
        None,
    ),
    (
        "Promotion Viewed",
        "A promotion was shown.",
        ["promotion_id", "creative", "name", "position"],
        ["promotion_id"],
        1,
        None,
    ),
    ("Signed In", "A user signed in.", ["method"], ["method"], 1, None),
    ("Signed Out", "A user signed out.", [], [], 1, None),
    ("Signed Up", "A user signed up.", ["method", "trial_plan_name"], ["method"], 1, {"team": "growth"}),
    (
        "Trial Ended",
        "A trial ended.",
        ["trial_start_date", "trial_end_date", "trial_plan_name"],
        ["trial_end_date"],
        1,
        None,
    ),
    (
        "Trial Started",
        "A trial started.",
        ["trial_start_date", "trial_end_date", "trial_plan_name"],
        ["trial_start_date"],
        1,
        None,
    ),
    ("Video Content Started", "A video's content segment started.", VIDEO, ["session_id"], 1, None),
    ("Video Playback Completed", "A video played to its end.", VIDEO, ["session_id"], 1, None),
    ("Video Playback Paused", "A video was paused.", VIDEO, ["session_id", "position_seconds"], 1, None),
    ("Video Playback Started", "A video started playing.", VIDEO, ["session_id"], 1, None),
    (
        "Wishlist Product Added to Cart",
        "A wishlist product went into the cart.",
        ["wishlist_id", "product_id", "quantity"],
        ["wishlist_id", "product_id"],
        1,
        None,
    ),
]

TRAITS: Schema = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "format": "email", "description": "The user's email address"},
        "name": {"type": "string"},
        "plan": {"type": "string", "enum": ["free", "team", "enterprise"]},
        "logins": {"type": "integer", "minimum": 0},
        "created_at": {"type": "string", "format": "date-time"},
    },
    "required": ["email", "plan"],
}


def body(props: list[str], required: list[str]) -> Schema:
    return {"type": "object", "properties": {p: PROPS[p] for p in props}, "required": list(required)}


def message(inner: Schema, key: str = "properties", description: str | None = None) -> Schema:
    schema: Schema = {
        "$schema": DRAFT_07,
        "type": "object",
        "properties": {"context": {}, "traits": {}, "properties": {}, key: inner},
        "required": [key],
    }
    if description is not None:
        schema["description"] = description
    return schema


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def segment() -> dict[str, Any]:
    """The body of the Public API's "Replace Rules in Tracking Plan": {"rules": [{key, type, version, jsonSchema}]}."""
    rules = []
    for name, description, props, required, version, labels in EVENTS:
        schema = message(body(props, required), description=description)
        if labels is not None:
            schema["labels"] = labels
        rules.append({"key": name, "type": "TRACK", "version": version, "jsonSchema": schema})
    rules.append({"key": None, "type": "IDENTIFY", "version": 1, "jsonSchema": message(TRAITS, "traits")})
    # A COMMON rule (every message): the library must say who sent it.
    context = {"type": "object", "properties": {"library": {"type": "object"}}, "required": ["library"]}
    common = {"$schema": DRAFT_07, "type": "object", "properties": {"context": context}, "required": ["context"]}
    rules.append({"key": None, "type": "COMMON", "version": 1, "jsonSchema": common})
    return {"rules": rules}


def typewriter() -> dict[str, Any]:
    """Typewriter's plan.json: the plan's names and times, rules.events, rules.identify (empty trait lists)."""
    events = []
    for name, description, props, required, version, labels in EVENTS:
        schema = message(body(props, required))
        schema["labels"] = labels or {}
        events.append({"description": description, "name": name, "rules": schema, "version": version})
    identify = message(TRAITS, "traits")
    identify["labels"] = {}
    return {
        "create_time": "2026-11-02T09:14:05.000Z",
        "display_name": "Shop Tracking Plan",
        "name": "workspaces/acme/tracking-plans/rs_2AcmeShopPlan",
        "rules": {"events": events, "group_traits": [], "identify": identify, "identify_traits": []},
        "update_time": "2026-11-30T17:02:44.000Z",
    }


def _iglu_name(event: str) -> str:
    return event.lower().replace(" ", "_")


def iglu() -> dict[str, str]:
    """Self-describing schemas, one per event: vendor/name/jsonschema/version, closed (additionalProperties false)."""
    files = {}
    for index, (name, description, props, required, version, _labels) in enumerate(EVENTS):
        schemaver = f"{version}-{index % 2}-{index % 3}"
        document = {
            "$schema": IGLU_META,
            "description": description,
            "self": {"vendor": VENDOR, "name": _iglu_name(name), "format": "jsonschema", "version": schemaver},
            **body(props, required),
            "additionalProperties": False,
        }
        files[f"{VENDOR}/{_iglu_name(name)}/jsonschema/{schemaver}"] = dumps(document)
    return files


def _rudder_property(key: str, schema: Schema, prop_id: str) -> dict[str, Any]:
    """A property as rudder-cli declares it: type (comma-separated when several), description, propConfig
    (the other JSON Schema keywords; a plain item type as itemTypes)."""
    rest = dict(schema)
    kind, description, items = rest.pop("type", None), rest.pop("description", None), rest.get("items")
    if isinstance(items, dict) and list(items) == ["type"]:
        rest = {k: v for k, v in rest.items() if k != "items"} | {"itemTypes": [items["type"]]}
    declared = {
        "id": prop_id,
        "name": key,
        "type": ",".join(kind) if isinstance(kind, list) else kind,
        "description": description,
        "propConfig": rest or None,
    }
    return {field: value for field, value in declared.items() if value is not None}


def rudder() -> list[dict[str, Any]]:
    """rudder-cli: an events, a properties and a tp document (rudder/v0.1), one event_rule per event."""
    events, properties, rules = [], {}, []
    for name, description, props, required, _version, labels in sorted(EVENTS):
        event_id = "ev-" + _iglu_name(name).replace("_", "-")
        events.append({"id": event_id, "name": name, "event_type": "track", "description": description})
        refs = []
        for key in props:
            if key not in properties:
                properties[key] = _rudder_property(key, PROPS[key], "prop-" + key.replace(" ", "-").replace("_", "-"))
            refs.append({"$ref": f"#/properties/shop-properties/{properties[key]['id']}", "required": key in required})
        rule: dict[str, Any] = {
            "type": "event_rule",
            "id": "rule-" + event_id,
            "event": {"$ref": f"#/events/shop-events/{event_id}", "allow_unplanned": labels is not None},
        }
        if refs:
            rule["properties"] = refs
        rules.append(rule)
    version = "rudder/v0.1"
    return [
        {"version": version, "kind": "events", "metadata": {"name": "shop-events"}, "spec": {"events": events}},
        {
            "version": version,
            "kind": "properties",
            "metadata": {"name": "shop-properties"},
            "spec": {"properties": list(properties.values())},
        },
        {
            "version": version,
            "kind": "tp",
            "metadata": {"name": "shop-plan"},
            "spec": {
                "id": "shop_plan",
                "display_name": "Shop tracking plan",
                "description": "E-commerce, B2B SaaS and video events of the shop.",
                "rules": rules,
            },
        },
    ]


def main() -> None:
    (HERE / "segment.json").write_text(dumps(segment()), encoding="utf-8")
    (HERE / "typewriter-plan.json").write_text(dumps(typewriter()), encoding="utf-8")
    shutil.rmtree(HERE / "iglu", ignore_errors=True)
    for relative, text in iglu().items():
        path = HERE / "iglu" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    text = yaml.safe_dump_all(rudder(), sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
    (HERE / "rudder.yaml").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
