from app import create_app
from config import TestingConfig


def test_health_answers_when_the_database_does(app):
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_health_reports_an_unreachable_database(tmp_path):
    broken = create_app(TestingConfig(), INSTANCE_DIR=tmp_path,
                        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = broken.test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"
