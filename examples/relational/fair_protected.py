from verify.spec import box, fair

# changing only the protected attribute (feature 3) never changes the score
PROPERTY = fair(box([0, 0, 0, 0], [1, 1, 1, 1]), sensitive=[3], output=0, tolerance=0.0)
