"""sandbox/aws_request_log.py: one line per request, naming its service, action and caller."""
import io

from sandbox import aws_request_log

AUTH = ("AWS4-HMAC-SHA256 Credential=AKIAPARTY1/20261207/eu-west-2/%s/aws4_request, "
        "SignedHeaders=host, Signature=x")


def _call(tmp_path, environ, body=b"", status="200 OK"):
    log = tmp_path / "requests.log"
    seen = {}

    def app(env, start):
        seen["body"] = env["wsgi.input"].read()
        start(status, [])
        return [b"ok"]

    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", "wsgi.input": io.BytesIO(body),
           "CONTENT_LENGTH": str(len(body))}
    env.update(environ)
    out = aws_request_log.wrap(app, str(log))(env, lambda *a: None)
    assert out == [b"ok"]
    return log.read_text().split(), seen["body"]


def test_a_query_api_action_is_read_from_the_form_and_the_body_still_reaches_the_app(tmp_path):
    body = b"Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=vpc-id"
    fields, seen = _call(tmp_path, {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/x-www-form-urlencoded",
                                    "HTTP_AUTHORIZATION": AUTH % "ec2",
                                    "HTTP_USER_AGENT": "APN/1.0 Ansible/2.19.4 amazon.aws/10.1.2 Boto3/1.40"}, body)
    assert seen == body
    assert fields[1:] == ["AKIAPARTY1", "eu-west-2", "ec2", "DescribeSubnets", "200", "ansible"]


def test_a_json_api_action_is_its_target(tmp_path):
    fields, _ = _call(tmp_path, {"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "TrentService.DescribeKey",
                                 "HTTP_AUTHORIZATION": AUTH % "kms", "HTTP_USER_AGENT": "Boto3/1.40"},
                      b"{}", status="400 Bad Request")
    assert fields[3:] == ["kms", "DescribeKey", "400", "other"]


def test_a_rest_path_keeps_its_shape_without_ids(tmp_path):
    fields, _ = _call(tmp_path, {"PATH_INFO": "/clusters/kms-p1/node-groups/ng-0123456789ab",
                                 "HTTP_AUTHORIZATION": AUTH % "eks", "HTTP_USER_AGENT": "ansible-test"})
    assert fields[3:] == ["eks", "GET:/clusters/kms-p1/node-groups/*", "200", "ansible"]


def test_an_unsigned_request_is_logged_with_dashes(tmp_path):
    fields, _ = _call(tmp_path, {"PATH_INFO": "/moto-api/"})
    assert fields[1:4] == ["-", "-", "-"] and fields[4] == "GET:/moto-api"


def test_the_simulated_nodes_vault_requests_are_the_node_callers(tmp_path):
    from botocore.config import Config

    agent = "Boto3/1.40 md/Botocore#1.40 " + Config(user_agent_extra="kms-sim").user_agent_extra
    fields, _ = _call(tmp_path, {"REQUEST_METHOD": "HEAD", "PATH_INFO": "/kms-p1-private/PRIV-p1/Context/07ab",
                                 "HTTP_AUTHORIZATION": AUTH % "s3", "HTTP_USER_AGENT": agent})
    assert fields[3:] == ["s3", "HEAD:/kms-p1-private/PRIV-p1/Context/*", "200", "node"]
