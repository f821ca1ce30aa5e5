"""The test tiers, each a pytest marker (``pytest -m unit``) that tests/conftest.py puts on every test:

    unit         pure functions: no server, no subprocess worth mentioning; hypothesis properties
    integration  the real openai SDK against the fake server on loopback, the real OpenTelemetry SDK in-process
    cli          the commands and ``opentelemetry-instrument`` as subprocesses, as a user runs them (and Chromium)
    stack        the real Collector, Jaeger and Prometheus (tests/support/stack) with the shipped configs and rules
    config       the shipped configs and rules linted: YAML structure, promtool, ``otelcol validate``, manifests

A test's tier is its own tier marker if it has one (``@pytest.mark.cli``), else its entry in :data:`TESTS_IN`
(the tests of a file that belong to another tier than the file), else its file's in :data:`FILES_IN`; a file in
neither is ``integration``. ``slow`` (:data:`SLOW`) marks tests that take seconds each on the shared 2-core machine
(load and memory soaks, long hypothesis properties): the quick tier (``nox -s quick``) is
``(unit or integration) and not slow``; the full suite runs them all.
"""

from __future__ import annotations

TIERS = ("unit", "integration", "cli", "stack", "config")
QUICK = "(unit or integration) and not slow"

#: file (stem) -> tier
FILES_IN = {
    **dict.fromkeys(["test_fingerprint", "test_terminal", "test_scope_errors", "test_endpoints", "test_masking",
                     "test_tokens", "test_readme", "test_scope_map_sdk", "test_report", "test_caches", "test_steps",
                     "test_tiers", "test_layers"],
                    "unit"),
    **dict.fromkeys(["test_instrumentation", "test_diagnosis", "test_faults", "test_fork", "test_hostile",
                     "test_leaks", "test_load", "test_memory", "test_settings", "test_logfire", "test_fake_server",
                     "test_fake_tokens", "test_key_providers", "test_token_runtime", "test_derived_clients",
                     "test_operations"], "integration"),
    **dict.fromkeys(["test_cli", "test_doctor", "test_end_to_end", "test_exporter", "test_report_hostile",
                     "test_report_credentials", "test_report_fleet", "test_report_html", "test_fleet_install"], "cli"),
    **dict.fromkeys(["test_stack", "test_stack_script", "test_stack_scrub", "test_report_collector_file",
                     "test_fleet_alert_timing", "test_fleet_faults", "test_fleet_scaleout", "test_fleet_verdict",
                     "test_stack_overlays"],
                    "stack"),
    **dict.fromkeys(["test_collector_config", "test_fleet_rules", "test_fleet_k8s", "test_stack_validate"],
                    "config"),
}

#: "file::test" -> tier, for tests of another tier than their file's
TESTS_IN = {
    **dict.fromkeys(["test_report::test_nothing_readable_exits_2_with_one_line_saying_why",
                     "test_report::test_spans_from_another_instrumentation_only_are_no_all_clear",
                     "test_report::test_some_unreadable_lines_are_a_warning_with_counts",
                     "test_report::test_exit_0_when_nothing_is_found",
                     "test_report::test_json_from_the_cli",
                     "test_report::test_html_report_in_headless_chromium",
                     "test_tokens::test_cli_fingerprint_of_a_token_says_what_it_used_never_a_claim_value",
                     "test_settings::test_opentelemetry_instrument_still_instruments_with_bad_values",
                     "test_instrumentation::test_api_only_then_sdk_configured_later",
                     "test_token_runtime::test_no_claim_value_and_no_token_piece_in_any_exported_byte",
                     "test_derived_clients::test_the_rebinding_bug_flows_from_the_live_file_to_report"], "cli"),
    "test_hostile::test_hostile_text_never_costs_a_batch_real_collector_grpc": "stack",
}

#: "file" or "file::test": seconds each (measured under load; README "Tests"), in the full suite only
SLOW = frozenset([
    "test_load", "test_memory",
    "test_logfire::test_fingerprint_hint_and_kind_survive_logfire_default_scrubbing_for_every_kind",
    "test_report::test_any_json_lines_give_an_analysis_or_a_reason_never_an_exception",
    "test_report::test_parallel_byte_ranges_give_exactly_the_one_pass_report",
    "test_report::test_memory_depends_on_lanes_not_spans",
    "test_tokens::test_any_claims_give_bounded_values_and_no_claim_value_leaves",
    "test_tokens::test_reading_never_raises_on_any_text",
    "test_hostile::test_any_credential",
    "test_hostile::test_any_header_values",
    "test_instrumentation::test_finding_8_live_clients_past_max_clients_keep_their_ids_and_memory",
    "test_instrumentation::test_finding_8_the_endpoint_cache_is_bounded_in_bytes",
    "test_fake_server::test_auto_pagination_ends_on_every_list_endpoint",
    "test_masking::test_no_window_of_the_key_survives_in_a_message",
    "test_masking::test_no_window_of_a_gateway_credential_survives",
    "test_masking::test_no_window_of_the_key_survives_in_response_headers",
    "test_masking::test_no_window_of_the_key_survives_in_json_fields",
    "test_masking::test_a_fingerprint_or_hint_is_never_masked",
    "test_scope_errors::test_any_body_never_raises_and_stays_bounded",
    "test_endpoints::test_any_path_gives_a_bounded_template",
    "test_scope_map_sdk::test_the_scan_reads_every_call_site",
    "test_fork::test_multiprocessing_fork_start_method",
    "test_fork::test_os_fork_while_threads_create_clients",
])


def tier_of(file_stem: str, test_name: str = "") -> str:
    """The tier of a test (``test_name`` without parameters) in tests/``file_stem``.py, by the tables above."""
    return TESTS_IN.get(f"{file_stem}::{test_name}") or FILES_IN.get(file_stem, "integration")


def is_slow(file_stem: str, test_name: str) -> bool:
    return file_stem in SLOW or f"{file_stem}::{test_name}" in SLOW
