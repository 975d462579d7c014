from verify.spec import box, monotone

# approval never decreases when only the income increases
PROPERTY = monotone(box([0, 0, 0, 0], [1, 1, 1, 1]), feature=0, output=0)
