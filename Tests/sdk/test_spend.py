"""Spend per app per day: attribution by client token or X-Sidecar-App, X-Sidecar-Spend-Today,
a daily budget that refuses the next request with OpenAI's error shape, and a state file that
keeps the spend across a restart."""
import contextlib
import pathlib
import tempfile
import uuid

import openai
import pytest

from conftest import repo_config, running_sidecar

# The fake upstream reports 11 prompt and 7 completion tokens: $0.0000975 a request on gpt-4o.
PER_REQUEST = (11 * 2.50 + 7 * 10.00) / 1e6


@contextlib.contextmanager
def sidecar(fake_upstream, state_file):
    config = repo_config(fake_upstream)
    config = config.replace('state_file = ""', f'state_file = "{state_file}"')
    config = config.replace("# budgets = [ { app = \"billing\", daily_usd = 5.00 } ]",
                            'budgets = [ { app = "billing", daily_usd = 0.0005 } ]')
    config += '\n[[clients]]\napp = "billing"\ntoken_env = "BILLING_TOKEN"\n'
    config += '\n[[clients]]\napp = "web"\ntoken_env = "WEB_TOKEN"\n'
    with running_sidecar(config, env={"BILLING_TOKEN": "sk-billing-app", "WEB_TOKEN": "sk-web-app"}) as (url, _):
        yield f"{url}/v1"


def ask(url, api_key="sk-anyone", **headers):
    client = openai.OpenAI(base_url=url, api_key=api_key, max_retries=0,
                           default_headers={"X-Sidecar-Cache-Namespace": str(uuid.uuid4()), "X-Sidecar-Tier": "1",
                                            **headers})
    return client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"a question {uuid.uuid4()}"}])


def test_a_spent_budget_refuses_the_next_request_and_survives_a_restart(fake_upstream):
    with tempfile.TemporaryDirectory() as tmp:
        state = pathlib.Path(tmp) / "state" / "spend.json"
        with sidecar(fake_upstream, state) as url:
            spent = []
            for _ in range(20):
                try:
                    raw = ask(url, api_key="sk-billing-app")  # the client token names the app
                except openai.RateLimitError as error:
                    refusal = error
                    break
                assert raw.headers["X-Sidecar-App"] == "billing"
                spent.append(float(raw.headers["X-Sidecar-Spend-Today"]))
            else:
                pytest.fail("the budget never refused a request")
            # Each answer showed the spend before it; the refusal came once $0.0005 was reached.
            assert spent == pytest.approx([i * PER_REQUEST for i in range(len(spent))], abs=1e-9)
            assert len(spent) * PER_REQUEST >= 0.0005 > (len(spent) - 1) * PER_REQUEST
            body = refusal.response.json()["error"]
            assert body["type"] == "insufficient_quota" and body["code"] == "daily_budget_exceeded"
            assert '"billing"' in body["message"] and "0.0005" in body["message"]
            assert int(refusal.response.headers["Retry-After"]) > 0
            # Other apps are not held by billing's budget; with client tokens, the token names the
            # app (an X-Sidecar-App header is not believed), and a request without one is refused.
            other = ask(url, api_key="sk-web-app", **{"X-Sidecar-App": "billing"})
            assert other.headers["X-Sidecar-App"] == "web" and other.status_code == 200
            with pytest.raises(openai.AuthenticationError):
                ask(url, **{"X-Sidecar-App": "billing"})
        # The state file outlives the process: after a restart billing is still refused.
        assert state.exists()
        with sidecar(fake_upstream, state) as url:
            with pytest.raises(openai.RateLimitError):
                ask(url, api_key="sk-billing-app")
            assert float(ask(url, api_key="sk-web-app").headers["X-Sidecar-Spend-Today"]) == pytest.approx(
                PER_REQUEST, abs=1e-9)
