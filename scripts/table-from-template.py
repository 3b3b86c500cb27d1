"""Creates a DynamoDB table shaped exactly as template.yaml's `Table` resource (keys,
attributes, GSIs, billing) on a DynamoDB-compatible server, so local runs of the Lambda
binary exercise the deployed table's shape rather than one the code made for itself.
Usage: table-from-template.py ENDPOINT TABLE_NAME"""
import sys

import boto3
import yaml


class TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) as plain values."""


TemplateLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: loader.construct_scalar(node)
    if isinstance(node, yaml.ScalarNode)
    else loader.construct_sequence(node)
    if isinstance(node, yaml.SequenceNode)
    else loader.construct_mapping(node),
)

endpoint, name = sys.argv[1], sys.argv[2]
template = yaml.load(open("template.yaml"), Loader=TemplateLoader)
props = template["Resources"]["Table"]["Properties"]
client = boto3.client(
    "dynamodb",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
client.create_table(
    TableName=name,
    BillingMode=props["BillingMode"],
    AttributeDefinitions=props["AttributeDefinitions"],
    KeySchema=props["KeySchema"],
    GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
    **({"StreamSpecification": {"StreamEnabled": True, **props["StreamSpecification"]}}
       if "StreamSpecification" in props else {}),
)
client.get_waiter("table_exists").wait(TableName=name)
print(f"table {name} created from template.yaml")
