"""What a lake on an object store is told from the environment: where the store is, never a secret."""

from __future__ import annotations

from autoflux.lake import Lake, fsspec_options, storage_options


def test_s3_endpoint_region_and_http_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hidden-key")
    lake = Lake.at("s3://bucket/lake/", base=tmp_path)
    assert lake.uri == "s3://bucket/lake"
    assert lake.storage_options == {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true", "AWS_REGION": "eu-west-3"}
    assert fsspec_options(lake.uri) == {"endpoint_url": "http://127.0.0.1:9000"}
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://minio.example")
    assert storage_options("s3://b/l")["AWS_ENDPOINT_URL"] == "https://minio.example"
    assert "AWS_ALLOW_HTTP" not in storage_options("s3://b/l")


def test_azure_endpoint_from_the_connection_string_without_its_key(monkeypatch):
    for name in ("AZURE_STORAGE_ENDPOINT", "AZURE_STORAGE_ACCOUNT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=c2VjcmV0;BlobEndpoint=http://127.0.0.1:10000/acct/;",
    )
    options = storage_options("az://container/lake")
    assert options == {
        "AZURE_STORAGE_ENDPOINT": "http://127.0.0.1:10000/acct",
        "AZURE_ALLOW_HTTP": "true",
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
    }
    assert "c2VjcmV0" not in repr(options)


def test_a_local_lake_has_no_storage_options(tmp_path):
    assert Lake.at("lake", base=tmp_path).storage_options == {}
