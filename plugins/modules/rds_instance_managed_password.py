#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rds_instance_managed_password
short_description: Create an RDS DB instance whose master password RDS generates and keeps in Secrets Manager
version_added: 0.1.0
description:
  - Makes sure the DB instance O(db_instance_identifier) exists with C(ManageMasterUserPassword)
    on - RDS generates the master password, stores it in an AWS Secrets Manager secret it owns
    (C(rds!db-...)) and rotates it. Nobody, Ansible included, ever sees the password.
  - A missing instance is created with the given settings (CreateDBInstance). An existing
    instance that already has an RDS-managed secret is left as it is; ongoing settings
    (instance class, storage, backups, deletion protection, security groups, tags) are then
    managed by M(amazon.aws.rds_instance), which has no option for an RDS-managed password in
    amazon.aws 10 and so cannot create such an instance itself.
  - An existing instance with a password of its own is only switched to an RDS-managed one
    with O(convert_existing=true), since RDS then replaces the password clients use.
  - The module takes no password and returns none; it returns the secret's ARN, status and KMS key.
  - Supports check mode (nothing is created; RV(changed) says whether it would be).
options:
  db_instance_identifier:
    description: Identifier of the DB instance.
    type: str
    required: true
    aliases: [id]
  engine:
    description: Database engine of a new instance.
    type: str
    choices: [postgres, mysql, mariadb]
    default: postgres
  engine_version:
    description: Engine version of a new instance, for example C(16.8). Unset lets RDS choose its default.
    type: str
  db_instance_class:
    description: Instance class of a new instance, for example C(db.t4g.medium). Required to create.
    type: str
  allocated_storage:
    description: Storage of a new instance, in GiB. Required to create.
    type: int
  max_allocated_storage:
    description: Upper limit for storage autoscaling, in GiB.
    type: int
  storage_type:
    description: Storage type of a new instance.
    type: str
    choices: [gp2, gp3, io1, io2, standard]
  master_username:
    description: Name of the master user. Required to create.
    type: str
  db_name:
    description: Name of the database created with the instance.
    type: str
  port:
    description: Port the database listens on.
    type: int
  db_subnet_group_name:
    description: DB subnet group of a new instance (its VPC and subnets).
    type: str
  vpc_security_group_ids:
    description: VPC security groups of a new instance.
    type: list
    elements: str
  storage_encrypted:
    description: Encrypt the storage at rest (cannot be changed after creation).
    type: bool
    default: true
  kms_key_id:
    description: KMS key for the storage encryption; unset uses the account's C(aws/rds) key.
    type: str
  master_user_secret_kms_key_id:
    description: KMS key encrypting the Secrets Manager secret; unset uses C(aws/secretsmanager).
    type: str
  deletion_protection:
    description: Refuse DeleteDBInstance until this is turned off.
    type: bool
    default: true
  backup_retention_period:
    description: Days automated backups are kept (0 turns them off).
    type: int
  preferred_backup_window:
    description: Daily backup window, C(hh24:mi-hh24:mi) in UTC.
    type: str
  preferred_maintenance_window:
    description: Weekly maintenance window, C(ddd:hh24:mi-ddd:hh24:mi) in UTC.
    type: str
  multi_az:
    description: Standby in another availability zone.
    type: bool
  publicly_accessible:
    description: Give the instance a public address.
    type: bool
    default: false
  copy_tags_to_snapshot:
    description: Copy the instance tags to its snapshots.
    type: bool
  auto_minor_version_upgrade:
    description: Apply minor engine upgrades in the maintenance window.
    type: bool
  tags:
    description: Tags of a new instance (later changes belong to M(amazon.aws.rds_instance)).
    type: dict
    aliases: [resource_tags]
  convert_existing:
    description:
      - Switch an existing instance that has a password of its own to an RDS-managed one
        (C(ModifyDBInstance ManageMasterUserPassword), applied immediately). RDS replaces the
        password, so clients using the old one stop working.
    type: bool
    default: false
  wait:
    description: Wait until the instance is C(available) after creating or converting it.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait with O(wait=true).
    type: int
    default: 3600
notes:
  - Run it with C(no_log) anyway - a habit for every task that touches a credential, even one that never sees it.
author:
  - threshold_kms.mpc_party contributors
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: PostgreSQL for the KMS connector, password generated and kept by RDS
  threshold_kms.mpc_party.rds_instance_managed_password:
    db_instance_identifier: kms-prod-p1-connector
    engine: postgres
    engine_version: "16.8"
    db_instance_class: db.t4g.medium
    allocated_storage: 20
    master_username: kms_connector
    db_name: kms_connector
    db_subnet_group_name: kms-prod-p1-connector
    vpc_security_group_ids: [sg-0123456789abcdef0]
    storage_encrypted: true
    deletion_protection: true
    backup_retention_period: 7
  register: __connector_db_created
  no_log: true

- name: Settings that may change later - amazon.aws.rds_instance
  amazon.aws.rds_instance:
    db_instance_identifier: kms-prod-p1-connector
    backup_retention_period: 14
    deletion_protection: true
"""

RETURN = r"""
created:
  description: Whether the instance was created by this run (or would be, in check mode).
  returned: always
  type: bool
converted:
  description: Whether RDS was told to manage the password of an existing instance.
  returned: always
  type: bool
db_instance_identifier:
  description: Identifier of the instance.
  returned: when the instance exists
  type: str
db_instance_arn:
  description: ARN of the instance.
  returned: when the instance exists
  type: str
status:
  description: DBInstanceStatus after the run.
  returned: when the instance exists
  type: str
  sample: available
endpoint:
  description: Address and port of the instance.
  returned: when the instance exists
  type: dict
  sample: {address: kms-prod-p1-connector.abc123.eu-west-1.rds.amazonaws.com, port: 5432}
master_user_secret:
  description: The secret RDS keeps the master password in - ARN, status and KMS key, never its value.
  returned: always
  type: dict
  sample:
    secret_arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123-AbCdEf"
    secret_status: active
    kms_key_id: arn:aws:kms:eu-west-1:123456789012:key/0123
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing dependency

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import rds_managed_password as lib


def describe(module, rds):
    try:
        found = rds.describe_db_instances(aws_retry=True, DBInstanceIdentifier=module.params["db_instance_identifier"])
    except is_boto3_error_code("DBInstanceNotFound"):
        return None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not describe DB instance %s" % module.params["db_instance_identifier"])
    return (found.get("DBInstances") or [None])[0]


def wait_available(module, rds):
    if not module.params["wait"]:
        return
    delay = 15
    try:
        rds.get_waiter("db_instance_available").wait(
            DBInstanceIdentifier=module.params["db_instance_identifier"],
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, module.params["wait_timeout"] // delay)})
    except botocore.exceptions.WaiterError as e:
        module.fail_json_aws(e, msg="DB instance %s is not available after %ss"
                             % (module.params["db_instance_identifier"], module.params["wait_timeout"]))


def result(instance, created=False, converted=False, changed=False):
    out = dict(changed=changed, created=created, converted=converted, master_user_secret=lib.secret_view(instance))
    out.update(lib.instance_view(instance))
    return out


def main():
    argument_spec = dict(
        db_instance_identifier=dict(type="str", required=True, aliases=["id"]),
        engine=dict(type="str", default="postgres", choices=list(lib.INSTANCE_ENGINES)),
        engine_version=dict(type="str"),
        db_instance_class=dict(type="str"),
        allocated_storage=dict(type="int"),
        max_allocated_storage=dict(type="int"),
        storage_type=dict(type="str", choices=["gp2", "gp3", "io1", "io2", "standard"]),
        master_username=dict(type="str"),
        db_name=dict(type="str"),
        port=dict(type="int"),
        db_subnet_group_name=dict(type="str"),
        vpc_security_group_ids=dict(type="list", elements="str"),
        storage_encrypted=dict(type="bool", default=True),
        kms_key_id=dict(type="str"),
        master_user_secret_kms_key_id=dict(type="str", no_log=False),
        deletion_protection=dict(type="bool", default=True),
        backup_retention_period=dict(type="int"),
        preferred_backup_window=dict(type="str"),
        preferred_maintenance_window=dict(type="str"),
        multi_az=dict(type="bool"),
        publicly_accessible=dict(type="bool", default=False),
        copy_tags_to_snapshot=dict(type="bool"),
        auto_minor_version_upgrade=dict(type="bool"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        convert_existing=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=3600),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    errors = lib.validate_params(module.params)
    if errors:
        module.fail_json(msg="Invalid input: " + "; ".join(errors), errors=errors)
    rds = aws_retry.client(module, "rds", extra_codes=["InvalidDBInstanceState"])

    instance = describe(module, rds)
    action, reason = lib.plan(instance, module.params["convert_existing"])
    if action == "refuse":
        module.fail_json(msg="DB instance %s: %s" % (module.params["db_instance_identifier"], reason),
                         **result(instance))
    if action == "none":
        module.exit_json(msg=reason, **result(instance))
    if module.check_mode:
        module.exit_json(msg="would %s: %s" % (action, reason), **result(instance, created=action == "create",
                                                                       converted=action == "enable", changed=True))
    try:
        if action == "create":
            rds.create_db_instance(aws_retry=True, **lib.create_parameters(module.params, module.params["tags"]))
        else:
            rds.modify_db_instance(aws_retry=True, DBInstanceIdentifier=module.params["db_instance_identifier"],
                                   ManageMasterUserPassword=True, ApplyImmediately=True,
                                   **({"MasterUserSecretKmsKeyId": module.params["master_user_secret_kms_key_id"]}
                                      if module.params["master_user_secret_kms_key_id"] else {}))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg="Could not %s DB instance %s" % (
            "create" if action == "create" else "turn on the RDS-managed password of", module.params["db_instance_identifier"]))
    wait_available(module, rds)
    module.exit_json(msg=reason, **result(describe(module, rds), created=action == "create",
                                          converted=action == "enable", changed=True))


if __name__ == "__main__":
    main()
