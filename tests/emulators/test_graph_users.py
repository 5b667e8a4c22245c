"""Graph emulator, ``/v1.0/users``: lookup by id or UPN, the ``('$upn')`` form, ``$select``, mail filters, 404."""

from __future__ import annotations

import httpx

from graph_world import (
    ADELE,
    DOLLAR,
    GUEST,
    MEGAN,
    READER_ID,
    GraphCaller,
    assert_graph_error,
    graph_token,
)


async def test_user_by_object_id_or_upn_case_insensitively(graph: GraphCaller) -> None:
    for reference in (ADELE["id"], ADELE["userPrincipalName"], str(ADELE["userPrincipalName"]).lower()):
        response = await graph.get(f"users/{reference}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["id"], body["userPrincipalName"], body["mail"]) == (
            ADELE["id"], ADELE["userPrincipalName"], ADELE["mail"])
        assert body["@odata.context"].endswith("#users/$entity")
        # The default property set of the docs (reference §3.5).
        assert {"businessPhones", "displayName", "givenName", "jobTitle", "surname", "preferredLanguage"} <= set(body)


async def test_select_returns_only_the_selected_properties(graph: GraphCaller) -> None:
    body = (await graph.get(f"users/{MEGAN['id']}", **{"$select": "id,mail"})).json()
    assert {k: v for k, v in body.items() if not k.startswith("@")} == {"id": MEGAN["id"], "mail": MEGAN["mail"]}
    assert_graph_error(await graph.get(f"users/{MEGAN['id']}", **{"$select": "id,password"}), 400, "BadRequest")


async def test_a_mail_that_is_not_the_upn_does_not_find_the_user_by_path(graph: GraphCaller) -> None:
    error = assert_graph_error(await graph.get(f"users/{MEGAN['mail']}"), 404, "Request_ResourceNotFound")
    assert error["message"] == (f"Resource '{MEGAN['mail']}' does not exist or one of its queried "
                                "reference-property objects are not present.")
    assert_graph_error(await graph.get("users/nobody@contoso.com"), 404, "Request_ResourceNotFound")


async def test_upns_starting_with_dollar_use_the_key_form_and_guest_upns_encode_the_hash(
    graph: GraphCaller
) -> None:
    body = (await graph.get(f"users('{DOLLAR['userPrincipalName']}')")).json()
    assert body["id"] == DOLLAR["id"]
    guest = str(GUEST["userPrincipalName"]).replace("#", "%23")
    assert (await graph.get(f"users/{guest}")).json()["id"] == GUEST["id"]


async def test_filter_by_mail_is_case_insensitive_and_limited_to_equality(graph: GraphCaller) -> None:
    body = (await graph.get("users", **{"$filter": "mail eq 'megan.bowen@CONTOSO.com'",
                                        "$select": "id,userPrincipalName"})).json()
    assert body["value"] == [{"id": MEGAN["id"], "userPrincipalName": MEGAN["userPrincipalName"]}]
    none = (await graph.get("users", **{"$filter": "mail eq 'ghost@contoso.com'"})).json()
    assert none["value"] == []
    both = (await graph.get("users", **{"$filter": f"mail eq '{ADELE['mail']}' or mail eq '{MEGAN['mail']}'"})).json()
    assert {u["id"] for u in both["value"]} == {ADELE["id"], MEGAN["id"]}
    assert_graph_error(await graph.get("users", **{"$filter": "mail ne 'x@y.com'"}), 400, "Request_UnsupportedQuery")
    assert_graph_error(await graph.get("users", **{"$filter": "jobTitle eq 'CISO'"}), 400, "BadRequest")


async def test_users_need_user_read_all(http: httpx.AsyncClient, graph: GraphCaller) -> None:
    reader = GraphCaller(http, await graph_token(http, client_id=READER_ID))
    error = assert_graph_error(await reader.get(f"users/{ADELE['id']}"), 403, "Authorization_RequestDenied")
    assert "User.Read.All" in error["message"]
