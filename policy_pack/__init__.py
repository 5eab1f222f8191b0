"""ecs-delivery's security rules as a Pulumi CrossGuard policy pack (`pulumi preview --policy-pack policy_pack`)."""
