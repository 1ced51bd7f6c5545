"""ledger: ledger_authorize(), the whole authorization as one call on PostgreSQL

Revision ID: 0003_authorize_function
Revises: 0002_legacy_transactions

Why a function: an authorization is a claim of the idempotency key, a card read, the conditional
hold UPDATE, the authorization insert and the stored response. Sent one by one that is five
statements plus BEGIN and COMMIT, i.e. seven round trips; the service's CPU and the waits between
them cost far more than the database's work. As one call (autocommit: the call is the shard
transaction) it is one round trip, and the rules stay exactly those of the Python path:

- the claim is the first statement; a concurrent claimer of the same key blocks on our
  uncommitted row, and, because PL/pgSQL takes a new snapshot per statement under READ
  COMMITTED, then reads the response we committed (returned with replayed = true);
- the hold is the same conditional UPDATE (`repository.hold_statement`); only when it matches
  nothing is the account read to name the reason, re-trying up to `p_attempts` times when a
  concurrent release made room in between (as `services.Ledger._take_hold`);
- an unknown card or account raises SQLSTATE P0002 (`card_not_found`): the whole call, claim
  included, rolls back, as the Python path's 404 does;
- the response body is written compact, keys in the API's order, the same bytes FastAPI sends.

The rule parameters (delinquency cycles, attempts, hold expiry, card expiry month) come from
Python (`domain`), so the rules have one home. SQLite has no functions: it runs the Python path.
"""

from alembic import op

revision = "0003_authorize_function"
down_revision = "0002_legacy_transactions"
branch_labels = None
depends_on = None

YUAN = """
CREATE OR REPLACE FUNCTION ledger_yuan(fen bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN fen < 0 THEN '-' ELSE '' END || (abs(fen) / 100)::text || '.'
         || lpad((abs(fen) % 100)::text, 2, '0')
$$
"""

AUTHORIZE = """
CREATE OR REPLACE FUNCTION ledger_authorize(
    p_scope text, p_key text, p_request_hash text,
    p_card_id text, p_kind text, p_amount bigint,
    p_authorization_id text, p_auth_code text, p_mcc text, p_merchant_name text,
    p_business_date date, p_business_month text, p_expires_on date,
    p_max_delinquency integer, p_attempts integer, p_now timestamptz)
RETURNS TABLE (o_replayed boolean, o_request_hash text, o_status integer, o_body text,
               o_decision text, o_reason text)
LANGUAGE plpgsql AS $$
DECLARE
    v_account text;
    v_card_status text;
    v_expiry text;
    v_acc record;
    v_available bigint;
    v_reason text;
    v_approved boolean := false;
    v_cash boolean := p_kind = 'cash';
    v_body text;
BEGIN
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (scope, key, request_hash, created_at)
        VALUES (p_scope, p_key, p_request_hash, p_now)
        ON CONFLICT (scope, key) DO NOTHING;
        IF NOT FOUND THEN
            RETURN QUERY
                SELECT true, k.request_hash::text, k.response_status, k.response_body::text,
                       NULL::text, NULL::text
                  FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key;
            RETURN;
        END IF;
    END IF;

    SELECT c.account_id, c.status, c.expiry INTO v_account, v_card_status, v_expiry
      FROM ledger_cards c WHERE c.card_id = p_card_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'card_not_found' USING ERRCODE = 'P0002';
    END IF;
    IF v_card_status <> 'active' THEN
        v_reason := 'card_not_active';
    ELSIF v_expiry < p_business_month THEN
        v_reason := 'card_expired';
    END IF;

    FOR attempt IN 1..p_attempts LOOP
        IF v_reason IS NULL THEN
            UPDATE ledger_accounts a
               SET open_holds = a.open_holds + p_amount,
                   open_cash_holds = a.open_cash_holds
                                     + CASE WHEN v_cash THEN p_amount ELSE 0 END
             WHERE a.account_id = v_account
               AND a.status = 'active'
               AND a.delinquency_cycles <= p_max_delinquency
               AND a.credit_limit - a.balance - a.open_holds >= p_amount
               AND (NOT v_cash
                    OR a.open_cash_holds + a.principal_cash + p_amount <= a.cash_limit)
            RETURNING a.credit_limit - a.balance - a.open_holds INTO v_available;
            IF FOUND THEN
                v_approved := true;
                EXIT;
            END IF;
        END IF;
        SELECT a.status, a.delinquency_cycles, a.credit_limit, a.cash_limit, a.balance,
               a.open_holds, a.open_cash_holds, a.principal_cash
          INTO v_acc FROM ledger_accounts a WHERE a.account_id = v_account;
        IF NOT FOUND THEN  -- the card is known but its account.state has not arrived yet
            RAISE EXCEPTION 'card_not_found' USING ERRCODE = 'P0002';
        END IF;
        v_available := v_acc.credit_limit - v_acc.balance - v_acc.open_holds;
        EXIT WHEN v_reason IS NOT NULL;  -- a card decline only needed the available credit
        v_reason := CASE
            WHEN v_acc.status <> 'active' OR v_acc.delinquency_cycles > p_max_delinquency
                THEN 'account_not_active'
            WHEN v_available < p_amount THEN 'insufficient_credit'
            WHEN v_cash AND v_acc.open_cash_holds + v_acc.principal_cash + p_amount
                            > v_acc.cash_limit
                THEN 'cash_limit_exceeded'
        END;
        EXIT WHEN v_reason IS NOT NULL;
    END LOOP;
    IF NOT v_approved AND v_reason IS NULL THEN
        v_reason := 'insufficient_credit';
    END IF;

    INSERT INTO authorizations (
        authorization_id, account_id, card_id, kind, amount, status, decline_reason, auth_code,
        hold_amount, hold_state, merchant_mcc, merchant_name, business_date, expires_on,
        created_at)
    VALUES (
        p_authorization_id, v_account, p_card_id, p_kind, p_amount,
        CASE WHEN v_approved THEN 'approved' ELSE 'declined' END, v_reason,
        CASE WHEN v_approved THEN p_auth_code END,
        CASE WHEN v_approved THEN p_amount ELSE 0 END,
        CASE WHEN v_approved THEN 'open' ELSE 'none' END,
        p_mcc, p_merchant_name, p_business_date,
        CASE WHEN v_approved THEN p_expires_on END, p_now);

    v_body := '{"authorization_id":' || to_json(p_authorization_id)::text
        || ',"status":' || CASE WHEN v_approved THEN '"approved"' ELSE '"declined"' END
        || ',"decline_reason":' || COALESCE(to_json(v_reason)::text, 'null')
        || ',"auth_code":' || CASE WHEN v_approved THEN to_json(p_auth_code)::text
                                   ELSE 'null' END
        || ',"available_credit":"' || ledger_yuan(v_available) || '"}';
    IF p_key IS NOT NULL THEN
        UPDATE idempotency_keys k SET response_status = 201, response_body = v_body::json
         WHERE k.scope = p_scope AND k.key = p_key;
    END IF;
    RETURN QUERY SELECT false, p_request_hash, 201, v_body,
        CASE WHEN v_approved THEN 'approved' ELSE 'declined' END, v_reason;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(YUAN)
    op.execute(AUTHORIZE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS ledger_authorize")
    op.execute("DROP FUNCTION IF EXISTS ledger_yuan")
