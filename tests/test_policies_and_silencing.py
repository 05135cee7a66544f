"""User policies (cerberus) and silencing at the three levels: CLI, takt.yaml, inline."""

from __future__ import annotations

from tests.conftest import BASE, PROJECT, codes, only

POLICY = """\
apiVersion: takt/v1
kind: Policy
metadata: {name: owner}
spec:
  ruleId: ACME001
  severity: %s
  message: deployments name their owner
  appliesTo: {kinds: [Deployment]%s}
  schema:
    metadata:
      type: dict
      schema:
        labels: {type: dict, required: true, schema: {owner: {type: string, required: true}}}
    spec:
      type: dict
      schema:
        resources: {type: dict, schema: {cpu: {type: number, max: 2}}}
"""


def test_policy_violation_is_located_with_the_users_rule_id(repo):
    r = repo({"policy.yaml": POLICY % ("error", "")})
    d = only(r, "ACME001")
    assert d.location.file == "deploy.yaml"
    assert d.location.line == 3  # the metadata key, parent of the missing labels
    assert "deployments name their owner" in d.message and "required field" in d.message
    assert d.related[0].file == "policy.yaml"


def test_policy_value_rule_points_at_the_value(repo):
    dep = BASE["deploy.yaml"].replace("metadata: {name: d}", "metadata: {name: d, labels: {owner: team}}")
    r = repo({"policy.yaml": POLICY % ("warning", ""), "deploy.yaml": dep + "  resources: {cpu: 4}\n"})
    d = only(r, "ACME001")
    assert d.severity.label == "warning"
    assert d.path == "spec.resources.cpu"
    assert "max value is 2" in d.message


def test_policy_selector_limits_where_it_applies(repo):
    r = repo({"policy.yaml": POLICY % ("error", ", selector: {matchLabels: {tier: prod}}")})
    assert "ACME001" not in codes(r)


def test_invalid_policy_schema_is_reported_on_the_policy(repo):
    bad = POLICY.replace("type: number, max: 2", "type: numbr") % ("error", "")
    d = only(repo({"policy.yaml": bad}), "TAKT8001")
    assert d.location.file == "policy.yaml"
    bad_regex = POLICY.replace("type: number, max: 2", "type: number, regex: '('") % ("error", "")
    d = only(repo({"policy.yaml": bad_regex}), "TAKT8001")
    assert d.path == "spec.schema.spec.schema.resources.schema.cpu.regex"
    assert d.location.file == "policy.yaml" and d.location.line == 17


def test_silencing_on_the_command_line_with_globs(repo):
    noisy = {"sources.yaml": BASE["sources.yaml"].replace('"nsu=urn:x;s=T"', '"ns=2;s=T"')}
    assert codes(repo(noisy)) == ["TAKT2002"]
    r = repo(noisy, ignore=["TAKT20*"])
    assert r.diagnostics == [] and r.silenced == 1


def test_silencing_in_the_project_file(repo):
    noisy = {"sources.yaml": BASE["sources.yaml"].replace('"nsu=urn:x;s=T"', '"ns=2;s=T"')}
    r = repo(noisy, project=PROJECT + "  ignore: [TAKT2002]\n")
    assert r.diagnostics == [] and r.silenced == 1


def test_silencing_inline_on_the_line_at_fault(repo):
    line = '{name: temp, dtype: float32, unit: degC, address: {nodeId: "ns=2;s=T"}}  # takt: ignore[TAKT2002]'
    src = BASE["sources.yaml"].replace(
        '{name: temp, dtype: float32, unit: degC, address: {nodeId: "nsu=urn:x;s=T"}}', line
    )
    r = repo({"sources.yaml": src})
    assert r.diagnostics == [] and r.silenced == 1
    # the comment silences only its own line and code
    src2 = src.replace('"nsu=urn:x;s=P"', '"ns=3;s=P"')
    assert codes(repo({"sources.yaml": src2})) == ["TAKT2002"]


def test_silencing_by_document_annotation(repo):
    src = (
        BASE["sources.yaml"]
        .replace('"nsu=urn:x;s=T"', '"ns=2;s=T"')
        .replace("metadata: {name: plc}", "metadata: {name: plc, annotations: {takt.dev/ignore: 'TAKT2002, TAKT2004'}}")
    )
    assert repo({"sources.yaml": src}).diagnostics == []


def test_errors_cannot_hide_behind_unknown_codes(repo):
    r = repo(project=PROJECT + "  ignore: [TAKT9999]\n")
    d = only(r, "TAKT9004")
    assert "TAKT9999" in d.message


def test_project_file_errors_are_located(repo):
    r = repo(project=PROJECT + "  specz: []\n")
    d = only(r, "TAKT1004")
    assert d.location.file == "takt.yaml" and d.hint == "did you mean 'specs'?"


def test_without_project_file_every_yaml_is_validated_with_a_warning(repo):
    r = repo(project=None)
    assert codes(r) == ["TAKT9001"]
    assert len(r.documents) == 6


def test_globs_that_match_nothing_are_reported(repo):
    r = repo(project=PROJECT.replace('["**/*.yaml"]', '["**/*.yaml", "spec/*.yml"]'))
    assert "spec/*.yml" in only(r, "TAKT9002").message


def test_excluded_files_are_not_loaded(repo):
    r = repo({"vendor/junk.yaml": "not: [valid"}, project=PROJECT + '  exclude: ["vendor/**"]\n')
    assert r.diagnostics == []
